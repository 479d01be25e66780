package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// timeFormat is how rkt prints absolute times (status, --full listings).
const timeFormat = "2006-01-02 15:04:05.999 -0700 MST"

// fmtTime formats nanoseconds since the epoch; zero prints as nothing.
func fmtTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).Format(timeFormat)
}

// printJSON writes v as JSON, indented when pretty.
func printJSON(w io.Writer, v any, pretty bool) error {
	enc := json.NewEncoder(w)
	if pretty {
		enc.SetIndent("", "\t")
	}
	return enc.Encode(v)
}

// timeAgo prints an age the way people say it: "2 minutes ago".
func timeAgo(d time.Duration) string {
	const day = 24 * time.Hour
	for _, u := range []struct {
		d    time.Duration
		name string
	}{
		{365 * day, "year"}, {30 * day, "month"}, {7 * day, "week"}, {day, "day"},
		{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"},
	} {
		if d >= u.d {
			n := int64(d / u.d)
			if n == 1 {
				return fmt.Sprintf("1 %s ago", u.name)
			}
			return fmt.Sprintf("%d %ss ago", n, u.name)
		}
	}
	return "just now"
}
