package main

import (
	"fmt"
	"strconv"
	"strings"
)

// privateUsersArgs maps --private-users onto systemd-nspawn's options.
func privateUsersArgs(v string) ([]string, error) {
	if v == "auto" {
		return []string{"--private-users=pick", "--private-users-ownership=auto"}, nil
	}
	shift, count, hasCount := strings.Cut(v, ":")
	if _, err := strconv.ParseUint(shift, 10, 32); err != nil {
		return nil, fmt.Errorf("--private-users=%s: want auto or SHIFT[:COUNT] (uids)", v)
	}
	if hasCount {
		if _, err := strconv.ParseUint(count, 10, 32); err != nil {
			return nil, fmt.Errorf("--private-users=%s: want auto or SHIFT[:COUNT] (uids)", v)
		}
	}
	return []string{"--private-users=" + v, "--private-users-ownership=auto"}, nil
}
