package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/activities"
)

// Inputs typed by hand (temporal workflow start --input '{...}') are decoded
// strictly: a misspelled key such as "stagng_path" would otherwise be
// dropped silently and the run would write to main. Decoding never fails
// (that would fail the workflow task over and over); the problem is kept and
// the workflow fails at once, non-retryable, naming the key.

// UnmarshalJSON decodes a BackfillInput, remembering unknown fields.
func (in *BackfillInput) UnmarshalJSON(b []byte) error {
	type plain BackfillInput
	var p plain
	bad, err := decodeStrict(b, &p)
	if err != nil {
		return err
	}
	*in = BackfillInput(p)
	in.decodeProblem = bad
	return nil
}

// UnmarshalJSON decodes a MergeInput, remembering unknown fields.
func (in *MergeInput) UnmarshalJSON(b []byte) error {
	type plain MergeInput
	var p plain
	bad, err := decodeStrict(b, &p)
	if err != nil {
		return err
	}
	*in = MergeInput(p)
	in.decodeProblem = bad
	return nil
}

// decodeStrict decodes b into v. An unknown field is returned as a problem
// (with v decoded leniently); malformed JSON is an error.
func decodeStrict(b []byte, v any) (problem string, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err == nil {
		return "", nil
	} else if !strings.HasPrefix(err.Error(), "json: unknown field") {
		return "", err
	} else {
		problem = strings.TrimPrefix(err.Error(), "json: ")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return "", err
	}
	return problem, nil
}

// inputProblem turns a remembered decode problem into the workflow's error.
func inputProblem(workflowName, problem string, known []string) error {
	if problem == "" {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s input: %s; known fields: %s", workflowName, problem, strings.Join(known, ", ")),
		activities.ErrTypeInvalidInput, nil)
}
