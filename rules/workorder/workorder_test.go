package workorder

import "testing"

// The wall's work orders keep what and where but not a mobile number
// typed into them; longer numbers (a registration code), dates and room
// numbers stay.
func TestMaskPhones(t *testing.T) {
	for in, want := range map[string]string{
		"12楼漏水，业主 138 1234 5678 李先生":     "12楼漏水，业主 *********** 李先生",
		"call 13812345678/13912345678":   "call ***********/***********",
		"+86 139-1234-5678":              "***********",
		"注册代码 31103101002015090013":      "注册代码 31103101002015090013",
		"3-1201 2026-11-02 400-820-0870": "3-1201 2026-11-02 400-820-0870",
	} {
		if got := MaskPhones(in); got != want {
			t.Errorf("MaskPhones(%q) = %q, want %q", in, got, want)
		}
	}
}
