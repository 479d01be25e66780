package testsuite

import (
	"strings"
	"testing"
)

func TestFlavorValidate(t *testing.T) {
	tests := []struct {
		name    string
		f       Flavor
		wantErr string // "" for valid
	}{
		{"minimal", Flavor{Name: "fly"}, ""},
		{"known skip", Flavor{Name: "kvm", Skip: map[string]string{"Interactive": "no stdin channel yet"}}, ""},
		{"no name", Flavor{}, "no name"},
		{"unknown case", Flavor{Name: "kvm", Skip: map[string]string{"Interactve": "typo"}}, `unknown case "Interactve"`},
		{"no reason", Flavor{Name: "kvm", Skip: map[string]string{"GC": ""}}, "without a reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
