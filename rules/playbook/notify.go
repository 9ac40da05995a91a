package playbook

import (
	"strings"

	"github.com/propgate/gateway/internal/cfgerr"
)

// notifyAction (`notify: [roles]`) asks alert routing to tell the people
// on duty in those roles.
type notifyAction []string

var _ Action = notifyAction(nil)

func (n notifyAction) Validate(path string, _ map[string]bool) error {
	for i, role := range n {
		if strings.TrimSpace(role) == "" {
			return cfgerr.Errorf(path+".notify", "role %d is empty", i)
		}
	}
	return nil
}

func (n notifyAction) Perform(x *Exec) error {
	x.r.notify(Notification{Roles: n, Incident: x.in.ID, Step: x.st.ID, Drill: x.in.Drill, Text: describe(x.in, x.st)})
	x.log("notified %s", strings.Join(n, ", "))
	return nil
}
