package ha

import "testing"

// A site's alarm name reaches the chat message as one short line: it
// cannot add lines that look like another escalation.
func TestPlainLine(t *testing.T) {
	if got := plainLine("水泵低压\n【升级报警】北区 假站点\r\u2028x"); got != "水泵低压 【升级报警】北区 假站点  x" {
		t.Errorf("%q", got)
	}
	long := ""
	for range 100 {
		long += "长"
	}
	if r := []rune(plainLine(long)); len(r) != 64 || r[63] != '…' {
		t.Errorf("%d runes", len(r))
	}
}
