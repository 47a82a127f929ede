package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/inbox"
)

// Each queue reads its conversations in activity order through an index
// made for it (SQLite's plan), not by walking the workspace's conversations
// and filtering: the unassigned queue by conversations_unassigned, "mine"
// and an assignee by conversations_assignee, a team by conversations_team,
// a channel by conversations_channel.
func TestQueuePlans(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "q.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name  string
		f     inbox.ConversationFilter
		index string
	}{
		{"unassigned", inbox.ConversationFilter{View: inbox.ViewUnassigned}, "conversations_unassigned"},
		{"assignee none", inbox.ConversationFilter{View: inbox.ViewAll, Assignee: "none"}, "conversations_unassigned"},
		{"mine", inbox.ConversationFilter{View: inbox.ViewMine, UserID: "u1"}, "conversations_assignee"},
		{"assignee", inbox.ConversationFilter{View: inbox.ViewAll, Assignee: "u1"}, "conversations_assignee"},
		{"team", inbox.ConversationFilter{View: inbox.ViewAll, Team: "t1"}, "conversations_team"},
		{"channel", inbox.ConversationFilter{View: inbox.ViewAll, Channel: "c1"}, "conversations_channel"},
		{"closed", inbox.ConversationFilter{View: inbox.ViewClosed}, "conversations_status"},
		{"all", inbox.ConversationFilter{View: inbox.ViewAll}, "conversations_activity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cq, err := conversationWhere("w1", tc.f)
			if err != nil {
				t.Fatal(err)
			}
			q := convSelect + ` WHERE ` + cq.where + ` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
			rows, err := db.rdb.Query(`EXPLAIN QUERY PLAN `+q, append(append([]any{""}, cq.args...), 26)...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			all := strings.Join(plan, "; ")
			if !strings.Contains(all, "c USING INDEX "+tc.index) && !strings.Contains(all, "c USING COVERING INDEX "+tc.index) {
				t.Errorf("plan: %s (want conversations read through %s)", all, tc.index)
			}
		})
	}
}
