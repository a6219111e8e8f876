package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAllowedLocations(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("CERTLAKE_LAKE_MAIN_PATH", "/lake/main")
	t.Setenv("CERTLAKE_LAKE_STAGING_PATH", "/lake/staging")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/lake"}; !slices.Equal(c.Lake.AllowedLocations, want) {
		t.Errorf("default lake.allowed_locations = %q, want %q", c.Lake.AllowedLocations, want)
	}

	t.Setenv("CERTLAKE_LAKE_ALLOWED_LOCATIONS", "/lake, s3://lake-bucket/ct")
	c, err = Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/lake", "s3://lake-bucket/ct"}; !slices.Equal(c.Lake.AllowedLocations, want) {
		t.Errorf("lake.allowed_locations from the environment = %q, want %q", c.Lake.AllowedLocations, want)
	}

	file := filepath.Join(dir, "certlake.yaml")
	yaml := "lake:\n  main_path: /lake/main\n  allowed_locations:\n    - /lake\n    - s3://lake-bucket/ct\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("CERTLAKE_LAKE_ALLOWED_LOCATIONS")
	c, err = Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/lake", "s3://lake-bucket/ct"}; !slices.Equal(c.Lake.AllowedLocations, want) {
		t.Errorf("lake.allowed_locations from the file = %q, want %q", c.Lake.AllowedLocations, want)
	}
}

func TestAllowedLocationsRefuseOwnTables(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"CERTLAKE_LAKE_ALLOWED_LOCATIONS": "/elsewhere"},
			[]string{"lake.main_path /lake/main is outside the allowed locations", "lake.staging_path /lake/staging is outside", "lake.allowed_locations"}},
		{map[string]string{"CERTLAKE_LAKE_ALLOWED_LOCATIONS": "/lake,gs://b/x"}, []string{"lake.allowed_locations[1]", `unknown scheme "gs"`}},
		{map[string]string{"CERTLAKE_LAKE_ALLOWED_LOCATIONS": "/lake", "CERTLAKE_LAKE_PLAN_DIR": "/plans"},
			[]string{"lake.plan_dir /plans is outside"}},
	} {
		t.Run(c.want[0], func(t *testing.T) {
			t.Chdir(t.TempDir())
			t.Setenv("CERTLAKE_LAKE_MAIN_PATH", "/lake/main")
			t.Setenv("CERTLAKE_LAKE_STAGING_PATH", "/lake/staging")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := Load("", nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not say %q", err, w)
				}
			}
		})
	}
}
