package workflows

import "testing"

func TestCanonicalStagingPath(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"/lake/staging", "/lake/staging", true},
		{"/lake/staging/", "/lake/staging", true},
		{"/lake/x/../staging", "/lake/staging", true},
		{"file:///lake/staging", "/lake/staging", true},
		{"file://localhost/lake/staging", "/lake/staging", true},
		{"s3://bucket/lake/staging", "s3://bucket/lake/staging", true},
		{"s3://bucket/lake//staging/", "s3://bucket/lake/staging", true},
		{"s3a://bucket/lake/staging", "s3://bucket/lake/staging", true},
		{"s3://bucket", "s3://bucket", true},
		{"s3:///staging", "", false},
		{"staging", "", false},
		{"./lake/staging", "", false},
	} {
		got, ok := CanonicalStagingPath(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("CanonicalStagingPath(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if MergeWorkflowID("file:///lake/staging") != MergeWorkflowID("/lake/staging/") {
		t.Error("one staging table, two merge workflow ids")
	}
	if MergeWorkflowID("s3://bucket/lake/staging") == MergeWorkflowID("/lake/staging") {
		t.Error("a bucket's staging and a local one share a merge workflow id")
	}
}
