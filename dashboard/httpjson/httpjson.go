// Package httpjson owns the JSON wire format the dashboard's handlers share:
// how a response and an error body are written and how a request body is read.
package httpjson

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Write sends v as indented JSON with status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Error sends msg as an ErrorBody with status.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, ErrorBody{Error: msg})
}

// Decode reads a JSON body strictly: unknown fields and trailing data are
// errors, answered with 400; it returns whether v was filled.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		Error(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		Error(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	if dec.More() {
		Error(w, http.StatusBadRequest, "body: data after the JSON object")
		return false
	}
	return true
}
