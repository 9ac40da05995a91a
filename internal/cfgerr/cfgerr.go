// Package cfgerr holds the configuration error every package's Validate
// returns: a message tied to a key path such as "devices[2].registers[0].type",
// which the config loader turns into file:line.
package cfgerr

import (
	"errors"
	"fmt"
)

// FieldError is a config validation error tied to a key path.
type FieldError struct{ Path, Msg string }

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf builds a FieldError.
func Errorf(path, format string, a ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, a...)}
}

// Prefix puts p in front of err's key path (err becomes a FieldError at p
// when it is not one).
func Prefix(p string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		if fe.Path == "" {
			return Errorf(p, "%s", fe.Msg)
		}
		return Errorf(p+"."+fe.Path, "%s", fe.Msg)
	}
	return Errorf(p, "%s", err.Error())
}
