package playbook

// AllHold exposes condition evaluation to the external tests.
var AllHold = allHold
