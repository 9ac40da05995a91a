package inspection_test

import "github.com/propgate/gateway/internal/testsite"

// site is the shared test site (internal/testsite).
type site = testsite.Site

var newSite = testsite.New
