package playbook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// writeActions (`write:`) set writable equipment fields (Modbus), each
// verified by read-back, on the incident's asset or on every asset of a
// kind in scope.
type writeActions []WriteAction

var _ Action = writeActions(nil)

func (ws writeActions) Validate(path string, _ map[string]bool) error {
	for i, w := range ws {
		if w.Field == "" || w.Value == nil {
			return cfgerr.Errorf(fmt.Sprintf("%s.write[%d]", path, i), "field and value are required")
		}
	}
	return nil
}

// describe says what the writes would change, for the person confirming.
func (ws writeActions) describe(in *Incident, assets []collectors.Asset) string {
	var parts []string
	for _, w := range ws {
		for _, target := range assetsFor(w.Kind, w.Scope, in, assets) {
			parts = append(parts, fmt.Sprintf("%s.%s = %v", target.ID, w.Field, w.Value))
		}
	}
	if len(parts) == 0 {
		return "no asset in scope"
	}
	return strings.Join(parts, ", ")
}

func (ws writeActions) Perform(x *Exec) error {
	var errs []error
	for _, w := range ws {
		for _, target := range assetsFor(w.Kind, w.Scope, x.in, x.r.assets) {
			switch {
			case x.in.Drill:
				x.log("drill: %s.%s = %v not written", target.ID, w.Field, w.Value)
			case x.r.equipment == nil:
				errs = append(errs, fmt.Errorf("write %s.%s: no equipment writer configured", target.ID, w.Field))
			default:
				ctx, cancel := context.WithTimeout(x.ctx, 10*time.Second)
				err := x.r.equipment.Write(ctx, target.ID, w.Field, toValue(w.Value))
				cancel()
				if err != nil {
					errs = append(errs, err)
				} else {
					x.log("wrote %s.%s = %v (verified by read-back)", target.ID, w.Field, w.Value)
				}
			}
		}
	}
	return joinErrs(errs)
}

// joinErrs joins errors with "; " (errors.Join uses newlines, which the
// step's one-line error field should not hold).
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msg := errs[0].Error()
	for _, e := range errs[1:] {
		msg += "; " + e.Error()
	}
	return errors.New(msg)
}

func toValue(v any) collectors.Value {
	switch x := v.(type) {
	case bool:
		return collectors.Bool(x)
	case int:
		return collectors.Float(float64(x))
	case float64:
		return collectors.Float(x)
	case string:
		return collectors.String(x)
	}
	return collectors.Value{}
}
