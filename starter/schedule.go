package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/workflows"
)

// defaultScheduleID names the nightly merge schedule.
const defaultScheduleID = "nightly-merge"

// scheduleCommand manages the Temporal schedule that runs MergeWorkflow
// nightly. Overlap is Skip: a merge still running when the next is due makes
// the schedule skip that one rather than queue or overlap it.
func scheduleCommand(c *cli) *cobra.Command {
	cmd := parentCommand(c, "schedule", "create, describe, trigger, pause, unpause or delete the nightly merge schedule")
	cmd.GroupID = groupWorkflows
	cmd.AddCommand(scheduleCreateCommand(c),
		scheduleOpCommand(c, "describe", "print the schedule, its recent and running merges"),
		scheduleOpCommand(c, "trigger", "start a scheduled merge now (skipped if one runs)"),
		scheduleOpCommand(c, "pause", "pause the schedule"),
		scheduleOpCommand(c, "unpause", "unpause the schedule"),
		scheduleOpCommand(c, "delete", "delete the schedule (running merges go on)"))
	return cmd
}

func scheduleCreateCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("create", "create the nightly merge schedule")
	staging := fs.String("staging-path", "", "staging Delta table the scheduled merges merge (required)")
	cron := fs.String("cron", "0 2 * * *", "when to merge, a cron expression")
	tz := fs.String("time-zone", "UTC", "IANA time zone of --cron")
	jitter := fs.Duration("jitter", 5*time.Minute, "random delay added to each run, up to this much")
	catchup := fs.Duration("catchup-window", time.Hour, "how late a missed run (server down) may still start")
	id := fs.String("id", defaultScheduleID, "schedule id")
	paused := fs.Bool("paused", false, "create the schedule paused")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("schedule create takes no arguments, got %q", args)
		}
		if *staging == "" {
			return errors.New("schedule create requires --staging-path <PATH>")
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		path, wid, err := mergeTarget(*staging)
		if err != nil {
			return err
		}
		tc, err := dial(ctx, c, cfg.Temporal)
		if err != nil {
			return err
		}
		defer tc.Close()
		h, err := tc.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: *id,
			Spec: client.ScheduleSpec{
				CronExpressions: []string{*cron},
				TimeZoneName:    *tz,
				Jitter:          *jitter,
			},
			Action: &client.ScheduleWorkflowAction{
				// Temporal appends the scheduled time to this id per run;
				// the run then merges under wid itself (MergeWorkflow runs
				// the merge as a child under its table's id), so a
				// scheduled merge and one started by hand or by merge_after
				// never run at once: the later one is skipped, naming wid.
				ID:            wid,
				Workflow:      workflows.MergeWorkflowName,
				Args:          []any{workflows.MergeInput{StagingPath: path}},
				TaskQueue:     cfg.Temporal.TaskQueue,
				StaticSummary: "nightly merge of " + path + " into main",
			},
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: *catchup,
			Paused:        *paused,
			Note:          "created by certlake starter",
		})
		if err != nil {
			var exists *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &exists) || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
				return fmt.Errorf("schedule %s already exists; delete it first (starter schedule delete --id %s)", *id, *id)
			}
			return fmt.Errorf("create schedule %s: %w", *id, err)
		}
		fmt.Fprintf(c.stdout, "created schedule %s: MergeWorkflow of %s, cron %q in %s, jitter %s, overlap skip, catch-up window %s\n",
			h.GetID(), path, *cron, *tz, *jitter, *catchup)
		if u := scheduleURL(cfg.Temporal, h.GetID()); u != "" {
			fmt.Fprintf(c.stdout, "  web ui: %s\n", u)
		}
		return nil
	}
	return cmd
}

// scheduleOpCommand runs describe, trigger, pause, unpause or delete.
func scheduleOpCommand(c *cli, op, short string) *cobra.Command {
	cmd, fs := newCommand(op, short)
	id := fs.String("id", defaultScheduleID, "schedule id")
	note := ""
	if op == "pause" || op == "unpause" {
		fs.StringVar(&note, "note", "", "reason, shown with the schedule")
	}
	asJSON := false
	if op == "describe" {
		fs.BoolVar(&asJSON, "json", false, "print the description as JSON")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("schedule %s takes no arguments, got %q", op, args)
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		tc, err := dial(ctx, c, cfg.Temporal)
		if err != nil {
			return err
		}
		defer tc.Close()
		h := tc.ScheduleClient().GetHandle(ctx, *id)
		switch op {
		case "describe":
			d, err := h.Describe(ctx)
			if err != nil {
				return scheduleErr(op, *id, err)
			}
			return printSchedule(c, *id, d, asJSON, scheduleURL(cfg.Temporal, *id))
		case "trigger":
			err = h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
		case "pause":
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: orDefault(note, "paused by certlake starter")})
		case "unpause":
			err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: orDefault(note, "unpaused by certlake starter")})
		case "delete":
			err = h.Delete(ctx)
		}
		if err != nil {
			return scheduleErr(op, *id, err)
		}
		past := map[string]string{"trigger": "triggered", "pause": "paused", "unpause": "unpaused", "delete": "deleted"}[op]
		fmt.Fprintf(c.stdout, "%s schedule %s\n", past, *id)
		return nil
	}
	return cmd
}

func scheduleErr(op, id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%s schedule %s: no such schedule", op, id)
	}
	return fmt.Errorf("%s schedule %s: %w", op, id, err)
}

// scheduleView is the JSON form of schedule describe.
type scheduleView struct {
	ID              string       `json:"id"`
	Cron            []string     `json:"cron,omitempty"`
	TimeZone        string       `json:"time_zone,omitempty"`
	Jitter          string       `json:"jitter,omitempty"`
	Overlap         string       `json:"overlap,omitempty"`
	CatchupWindow   string       `json:"catchup_window,omitempty"`
	Paused          bool         `json:"paused"`
	Note            string       `json:"note,omitempty"`
	WorkflowType    string       `json:"workflow_type,omitempty"`
	WorkflowID      string       `json:"workflow_id,omitempty"`
	TaskQueue       string       `json:"task_queue,omitempty"`
	NumActions      int          `json:"num_actions"`
	SkippedOverlap  int          `json:"num_skipped_overlap"`
	MissedCatchup   int          `json:"num_missed_catchup_window"`
	Running         []string     `json:"running_workflows"`
	Recent          []recentView `json:"recent_actions"`
	NextActionTimes []time.Time  `json:"next_action_times"`
	WebUI           string       `json:"web_ui,omitempty"`
}

type recentView struct {
	ScheduleTime time.Time `json:"schedule_time"`
	ActualTime   time.Time `json:"actual_time"`
	WorkflowID   string    `json:"workflow_id,omitempty"`
	RunID        string    `json:"run_id,omitempty"`
}

func printSchedule(c *cli, id string, d *client.ScheduleDescription, asJSON bool, ui string) error {
	v := scheduleView{ID: id, WebUI: ui, Running: []string{}, Recent: []recentView{}, NextActionTimes: d.Info.NextActionTimes}
	if s := d.Schedule.Spec; s != nil {
		v.Cron = s.CronExpressions
		v.TimeZone = s.TimeZoneName
		if s.Jitter > 0 {
			v.Jitter = s.Jitter.String()
		}
		// The server turns cron strings into calendars; show those when
		// the strings are gone.
		if len(v.Cron) == 0 {
			for _, cal := range s.Calendars {
				v.Cron = append(v.Cron, fmt.Sprintf("%+v", cal))
			}
		}
	}
	if p := d.Schedule.Policy; p != nil {
		v.Overlap = p.Overlap.String()
		v.CatchupWindow = p.CatchupWindow.String()
	}
	if s := d.Schedule.State; s != nil {
		v.Paused, v.Note = s.Paused, s.Note
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		v.WorkflowID, v.TaskQueue = a.ID, a.TaskQueue
		if name, ok := a.Workflow.(string); ok {
			v.WorkflowType = name
		}
	}
	v.NumActions = d.Info.NumActions
	v.SkippedOverlap = d.Info.NumActionsSkippedOverlap
	v.MissedCatchup = d.Info.NumActionsMissedCatchupWindow
	for _, r := range d.Info.RunningWorkflows {
		v.Running = append(v.Running, r.WorkflowID)
	}
	for _, r := range d.Info.RecentActions {
		rv := recentView{ScheduleTime: r.ScheduleTime, ActualTime: r.ActualTime}
		if r.StartWorkflowResult != nil {
			rv.WorkflowID, rv.RunID = r.StartWorkflowResult.WorkflowID, r.StartWorkflowResult.FirstExecutionRunID
		}
		v.Recent = append(v.Recent, rv)
	}
	if asJSON {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, string(b))
		return nil
	}
	w := c.stdout
	fmt.Fprintf(w, "schedule    %s\n", v.ID)
	fmt.Fprintf(w, "workflow    %s (id %s, task queue %s)\n", v.WorkflowType, v.WorkflowID, v.TaskQueue)
	fmt.Fprintf(w, "spec        %v, time zone %s, jitter %s\n", v.Cron, orDefault(v.TimeZone, "UTC"), orDefault(v.Jitter, "0s"))
	fmt.Fprintf(w, "policy      overlap %s, catch-up window %s\n", v.Overlap, v.CatchupWindow)
	state := "active"
	if v.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "state       %s %s\n", state, v.Note)
	fmt.Fprintf(w, "actions     %d taken, %d skipped (overlap), %d missed (catch-up window)\n", v.NumActions, v.SkippedOverlap, v.MissedCatchup)
	for _, r := range v.Running {
		fmt.Fprintf(w, "running     %s\n", r)
	}
	for _, r := range v.Recent {
		fmt.Fprintf(w, "recent      %s  %s\n", r.ActualTime.UTC().Format(time.RFC3339), r.WorkflowID)
	}
	for _, t := range v.NextActionTimes {
		fmt.Fprintf(w, "next        %s\n", t.UTC().Format(time.RFC3339))
	}
	if v.WebUI != "" {
		fmt.Fprintf(w, "web ui      %s\n", v.WebUI)
	}
	return nil
}
