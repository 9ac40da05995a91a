package inspection

import (
	"errors"
	"time"

	"github.com/propgate/gateway/collectors"
)

// Round statuses.
const (
	StatusOpen   = "open"   // scheduled, within its window
	StatusDone   = "done"   // every checkpoint entered
	StatusMissed = "missed" // the window passed first (an alarm until entered late or closed)
	StatusClosed = "closed" // a missed round closed by a person, with the reason
)

// Round is one run of a route.
type Round struct {
	ID        int64              `json:"id"`
	Route     string             `json:"route"`
	Name      string             `json:"name"`
	Scheduled time.Time          `json:"scheduled"`
	Due       time.Time          `json:"due"`
	Status    string             `json:"status"`
	AdHoc     bool               `json:"ad_hoc,omitempty"` // started by hand, not by the schedule
	Results   []CheckpointResult `json:"results"`
	Completed time.Time          `json:"completed,omitzero"`
	Late      bool               `json:"late,omitempty"` // completed after its window
	Abnormal  int                `json:"abnormal"`
	Flagged   int                `json:"flagged"`
	ClosedBy  string             `json:"closed_by,omitempty"`
	Note      string             `json:"note,omitempty"`
	Version   int                `json:"version"`
}

// CheckpointResult is what the inspector entered at one checkpoint.
type CheckpointResult struct {
	Checkpoint string       `json:"checkpoint"`
	CheckIn    string       `json:"check_in"` // qr (the checkpoint's code was scanned) or manual
	At         time.Time    `json:"at"`       // when it was entered
	By         string       `json:"by"`
	Items      []ItemResult `json:"items"`
}

// ItemResult is one item's entry, with what the gateway saw.
type ItemResult struct {
	Item      string            `json:"item"`
	Reading   *float64          `json:"reading,omitempty"`
	Yes       *bool             `json:"yes,omitempty"`
	Text      string            `json:"text,omitempty"`
	Photo     string            `json:"photo,omitempty"`     // link to the stored photo
	Telemetry *collectors.Value `json:"telemetry,omitempty"` // the live reading when entered
	Flagged   bool              `json:"flagged,omitempty"`   // the entry disagrees with the telemetry
	Abnormal  bool              `json:"abnormal,omitempty"`  // outside the normal range / not the normal answer
	WorkOrder int64             `json:"workorder,omitempty"` // opened for an abnormal item
}

// ForViewer leaves out what people wrote and who they are.
func (r Round) ForViewer() Round {
	res := make([]CheckpointResult, len(r.Results))
	for i, c := range r.Results {
		c.By = "（已隐去 hidden）"
		items := make([]ItemResult, len(c.Items))
		for j, it := range c.Items {
			it.Text, it.Photo = "", ""
			items[j] = it
		}
		c.Items = items
		res[i] = c
	}
	r.Results, r.Note, r.ClosedBy = res, "", ""
	return r
}

// Entry is what the phone page or the console submits for a checkpoint.
type Entry struct {
	Checkpoint string      `json:"checkpoint"`
	Code       string      `json:"code,omitempty"` // the checkpoint's QR code, when scanned
	Items      []EntryItem `json:"items"`
}

// EntryItem is one item as entered.
type EntryItem struct {
	Item    string   `json:"item"`
	Reading *float64 `json:"reading,omitempty"`
	Yes     *bool    `json:"yes,omitempty"`
	Text    string   `json:"text,omitempty"`
	Photo   string   `json:"photo,omitempty"` // data:image/jpeg;base64,… (at most MaxPhotoBytes)
}

// MaxPhotoBytes bounds one photo.
const MaxPhotoBytes = 512 << 10

// RoundFilter selects rounds.
type RoundFilter struct {
	Route  string
	Status string
	Since  time.Time
	Limit  int
}

// Errors callers map with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid entry")
	ErrClosed   = errors.New("the round is finished")
	ErrBadCode  = errors.New("the QR code is not this gateway's checkpoint code")
	ErrConflict = errors.New("the round was changed by someone else; reload and retry")
)
