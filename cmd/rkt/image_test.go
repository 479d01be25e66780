package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"rkt.dev/rkt/stage0/image"
)

func TestImageSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 1023: "1023B", 1024: "1.0KiB", 1258291: "1.2MiB", 5 << 30: "5.0GiB",
	} {
		if got := imageSize(n); got != want {
			t.Errorf("imageSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestImageTimeAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "just now", time.Second: "1 second ago", 2 * time.Minute: "2 minutes ago",
		90 * time.Minute: "1 hour ago", 50 * time.Hour: "2 days ago", 400 * 24 * time.Hour: "1 year ago",
	} {
		if got := timeAgo(d); got != want {
			t.Errorf("timeAgo(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestPrintImagesTable(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	id := "sha512-" + strings.Repeat("ab", 64)
	images := []image.Image{{
		ID: id, Name: "example.com/app", Labels: map[string]string{"version": "1.0"},
		ImportTime: now.Add(-2 * time.Minute), LastUsed: now.Add(-time.Second), Size: 1258291,
	}}
	var buf bytes.Buffer
	if err := printImagesTable(&buf, images, true, false, now); err != nil {
		t.Fatal(err)
	}
	want := "ID                                       NAME                 SIZE    IMPORT TIME    LAST USED\n" +
		id[:39] + "  example.com/app:1.0  1.2MiB  2 minutes ago  1 second ago\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}
