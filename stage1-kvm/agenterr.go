package main

import (
	"context"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// agentError is an error the guest agent returned, shown as the agent's
// own message: the agent writes its messages for the user, and ttrpc's
// "rpc error: code = FailedPrecondition desc =" in front of them only says
// which transport carried them. The status stays reachable
// (status.FromError, status.Code).
type agentError struct{ st *status.Status }

func (e agentError) Error() string              { return e.st.Message() }
func (e agentError) GRPCStatus() *status.Status { return e.st }

// plainAgentErrors is a ttrpc client interceptor that returns the agent's
// error status as an agentError (ttrpc itself would make it a status error
// after the interceptors); other errors (a broken connection) pass
// unchanged.
func plainAgentErrors(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
	if err := invoke(ctx, req, resp); err != nil {
		return err // the transport's, not the agent's
	}
	if resp.Status != nil && codes.Code(resp.Status.Code) != codes.OK {
		return agentError{status.FromProto(resp.Status)}
	}
	return nil
}

// plainAgentError turns a status error from the agent into an agentError.
func plainAgentError(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return agentError{st}
	}
	return err
}
