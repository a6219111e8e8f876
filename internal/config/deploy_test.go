package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The deployment files at the top of the repository feed this package: the
// compose file sets CERTLAKE_* variables and mounts certlake.example.yaml,
// the Dockerfile builds the binaries. These tests keep them in step with
// the config keys and go.mod. docker-compose itself validates the compose
// file in .ci/compose-check.sh.

// composeVar is docker-compose's interpolation, ${NAME}, ${NAME-default} or
// ${NAME:-default}.
var composeVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:?-([^}]*))?\}`)

// composeDefault interpolates v as docker-compose does when none of the
// variables it names is set (the default setup: local disk).
func composeDefault(v string) string {
	return composeVar.ReplaceAllString(v, "$2")
}

// TestComposeEnvironmentLoads loads the example config with the worker's
// environment from docker-compose.yml, as the container does: every
// variable must name a key and every value must be valid.
func TestComposeEnvironmentLoads(t *testing.T) {
	body, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(body, &compose); err != nil {
		t.Fatalf("parse docker-compose.yml: %v", err)
	}
	for _, name := range []string{"worker", "starter"} {
		t.Run(name, func(t *testing.T) {
			svc, ok := compose.Services[name]
			if !ok {
				t.Fatalf("docker-compose.yml has no %s service", name)
			}
			if len(svc.Environment) == 0 {
				t.Fatalf("service %s sets no environment", name)
			}
			for k, v := range svc.Environment {
				if k == EnvFile {
					continue // points into the container
				}
				t.Setenv(k, composeDefault(v))
			}
			cfg, err := Load("../../certlake.example.yaml", nil)
			if err != nil {
				t.Fatalf("Load with %s's environment = %v", name, err)
			}
			if cfg.Temporal.Address != "temporal:7233" || cfg.Lake.MainPath != "/data/lake/certstream" {
				t.Errorf("%s: temporal.address, lake.main_path = %q, %q; want temporal:7233, /data/lake/certstream", name, cfg.Temporal.Address, cfg.Lake.MainPath)
			}
			mounted := false
			for _, v := range svc.Volumes {
				if strings.HasSuffix(v, ":/etc/certlake/certlake.yaml:ro") {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s does not mount the config at /etc/certlake/certlake.yaml: %v", name, svc.Volumes)
			}
		})
	}
}

// TestDockerfileGoVersionMatchesGoMod: the image builds with the Go version
// go.mod asks for (same major.minor; the image takes the newest patch).
func TestDockerfileGoVersionMatchesGoMod(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	d := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\d+\.\d+)(\.\d+)?$`).FindSubmatch(dockerfile)
	if d == nil {
		t.Fatal("Dockerfile has no ARG GO_VERSION=X.Y")
	}
	if string(m[1]) != string(d[1]) {
		t.Errorf("Dockerfile GO_VERSION = %s, want go.mod's %s", d[1], m[1])
	}
	if !regexp.MustCompile(`(?m)^FROM golang:\$\{GO_VERSION\}\S* AS build$`).Match(dockerfile) {
		t.Error("Dockerfile's build stage is not FROM golang:${GO_VERSION}... AS build")
	}
	for _, want := range []string{"CGO_ENABLED=1", "./worker", "./starter"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
