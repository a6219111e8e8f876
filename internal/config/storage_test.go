package config

import (
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/storage"
)

func TestLoadStorage(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("CERTLAKE_STORAGE_S3_ENDPOINT", "http://127.0.0.1:7070")
	t.Setenv("CERTLAKE_STORAGE_S3_ALLOW_HTTP", "true")
	t.Setenv("CERTLAKE_STORAGE_S3_PATH_STYLE", "true")
	t.Setenv("CERTLAKE_STORAGE_S3_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("CERTLAKE_STORAGE_S3_SECRET_ACCESS_KEY", "s3cr3t-value")
	t.Setenv("CERTLAKE_WORKER_SCRATCH_DIR", "/var/tmp/certlake")
	t.Setenv("CERTLAKE_LAKE_MAIN_PATH", "s3://lake/ct/main")
	t.Setenv("CERTLAKE_LAKE_STAGING_PATH", "s3://lake/ct/staging")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.S3Config{Endpoint: "http://127.0.0.1:7070", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "s3cr3t-value", PathStyle: true, AllowHTTP: true}
	if got := storage.S3Config(c.Storage.S3); got != want {
		t.Errorf("storage.s3 = %+v, want %+v", got, want)
	}
	if c.Worker.ScratchDir != "/var/tmp/certlake" {
		t.Errorf("worker.scratch_dir = %q", c.Worker.ScratchDir)
	}
	if c.Lake.PlanDir != "s3://lake/ct/"+PlanDirName {
		t.Errorf("plan_dir next to an s3 main = %q, want s3://lake/ct/%s", c.Lake.PlanDir, PlanDirName)
	}
}

func TestLoadStorageErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"CERTLAKE_LAKE_MAIN_PATH": "gs://bucket/main"}, []string{"lake.main_path", `unknown scheme "gs"`, "s3://bucket/prefix", "file:///"}},
		{map[string]string{"CERTLAKE_LAKE_STAGING_PATH": "s3://"}, []string{"lake.staging_path", "names no bucket"}},
		{map[string]string{"CERTLAKE_LAKE_PLAN_DIR": "file://host/x"}, []string{"lake.plan_dir", "names host"}},
		{map[string]string{"CERTLAKE_LAKE_MAIN_PATH": "s3://b00/m", "CERTLAKE_LAKE_STAGING_PATH": "s3://b00/m/"}, []string{"lake.staging_path", "must differ"}},
		{map[string]string{"CERTLAKE_STORAGE_S3_ENDPOINT": "http://10.0.0.1:9000"}, []string{"storage.s3.endpoint", "plain http", "storage.s3.allow_http"}},
		{map[string]string{"CERTLAKE_STORAGE_S3_ENDPOINT": "s3.example.com"}, []string{"storage.s3.endpoint", "http(s) URL"}},
		{map[string]string{"CERTLAKE_STORAGE_S3_SECRET_ACCESS_KEY": "only-the-secret"}, []string{"storage.s3", "go together"}},
	} {
		t.Run(strings.Join(c.want[:2], " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
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
			if strings.Contains(err.Error(), "only-the-secret") {
				t.Errorf("Load error shows the secret: %q", err)
			}
		})
	}
}
