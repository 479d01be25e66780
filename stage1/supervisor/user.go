package supervisor

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

type credentials struct {
	uid, gid int
	groups   []int
}

// resolveCredentials turns the app's user and group (numbers or names) into
// IDs, reading the app's own /etc/passwd and /etc/group: the caller is
// already inside the app's root, so a name means what the image says.
func resolveCredentials(app *App) (credentials, string, error) {
	c := credentials{groups: append([]int{}, app.SupplementaryGIDs...)}
	user, group := app.User, app.Group
	if user == "" {
		user = "0"
	}
	var home string
	if uid, err := strconv.Atoi(user); err == nil {
		c.uid = uid
		if e, ok := lookupEntry("/etc/passwd", func(f []string) bool { return f[2] == user }); ok && len(e) > 5 {
			home = e[5]
		}
	} else {
		e, ok := lookupEntry("/etc/passwd", func(f []string) bool { return f[0] == user })
		if !ok || len(e) < 4 {
			return c, "", fmt.Errorf("app %s: user %q not found in the image's /etc/passwd", app.Name, user)
		}
		if c.uid, err = strconv.Atoi(e[2]); err != nil {
			return c, "", fmt.Errorf("app %s: bad uid for user %q in /etc/passwd", app.Name, user)
		}
		if len(e) > 5 {
			home = e[5]
		}
	}
	if group == "" {
		group = "0"
	}
	if gid, err := strconv.Atoi(group); err == nil {
		c.gid = gid
	} else {
		e, ok := lookupEntry("/etc/group", func(f []string) bool { return f[0] == group })
		if !ok || len(e) < 3 {
			return c, "", fmt.Errorf("app %s: group %q not found in the image's /etc/group", app.Name, group)
		}
		if c.gid, err = strconv.Atoi(e[2]); err != nil {
			return c, "", fmt.Errorf("app %s: bad gid for group %q in /etc/group", app.Name, group)
		}
	}
	return c, home, nil
}

// lookupEntry returns the colon-separated fields of the first line of an
// /etc/passwd-style file that match. A missing file matches nothing.
func lookupEntry(path string, match func([]string) bool) ([]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) >= 3 && match(fields) {
			return fields, true
		}
	}
	return nil, false
}
