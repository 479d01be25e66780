package docker

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// resolveUser turns a Docker USER ("", "name", "uid", "name:group",
// "uid:gid") into the appc user and group, as Docker resolves it when the
// container starts: names through the image's /etc/passwd and /etc/group,
// and without a group, the user's primary group from /etc/passwd (0 for a
// uid that has no entry).
//
// Names that the files do not have are kept as names: the stage1
// supervisor looks them up again in the app's root and reports a user
// that does not exist, rather than rkt silently running it as root.
func resolveUser(spec string, passwd, group []byte) (user, grp string) {
	if spec == "" {
		return "0", "0"
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	user, primary := u, "0"
	var entry []string
	if isNumber(u) {
		entry = lookup(passwd, 2, u)
	} else if entry = lookup(passwd, 0, u); entry != nil {
		user = entry[2]
	}
	if len(entry) > 3 && isNumber(entry[3]) {
		primary = entry[3]
	}
	if !hasGroup || g == "" {
		return user, primary
	}
	if isNumber(g) {
		return user, g
	}
	if e := lookup(group, 0, g); e != nil {
		return user, e[2]
	}
	return user, g
}

// lookup returns the fields of the first line of an /etc/passwd-style
// file whose field i is v and whose id field (2) is a number.
func lookup(file []byte, i int, v string) []string {
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) > 2 && f[i] == v && isNumber(f[2]) {
			return f
		}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
