// Package api is the ttrpc API of the KVM stage1's guest agent: the
// protobuf messages and the service (agent.proto, generated code in
// agent.pb.go and agent_ttrpc.pb.go), and the version both sides check.
//
// The host holds one ttrpc connection to the agent; ttrpc multiplexes calls
// and streams over it, so output streams, waits and exec sessions share
// that single byte stream (a virtio-serial port accepts only one).
package api

// APIVersion is the version of this API. The host sends it in Version and
// refuses an agent that answers another one: a stage1 image always ships
// its host binary and its agent together, so a mismatch means a broken
// build, not a case to negotiate.
const APIVersion = 2

// ServingNotice starts the console line the agent prints, after
// "rkt-agent: ", once it serves the API: a VM template is saved when it
// shows, before any host connection, so that the clones' agents start
// with no connection state.
const ServingNotice = "serving the agent API over"
