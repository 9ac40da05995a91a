package rules

import "errors"

// ErrNotFound: no alarm, work order or incident with that id. Stores
// return it (wrapped) for every kind of record; callers match it with
// errors.Is.
var ErrNotFound = errors.New("not found")
