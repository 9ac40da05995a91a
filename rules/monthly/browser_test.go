package monthly_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/propgate/gateway/internal/testenv"
)

// The HTML report as a browser renders it: Debian's Chromium, headless,
// loads the page and reads the figures and their met/not-met marks back; a
// screenshot of the whole page is left for people to look at.
func TestMonthlyReportInChromiumIntegration(t *testing.T) {
	testenv.Integration(t)
	r, _ := month(t)
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer srv.Close()

	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("chromium is not installed; run `make deps` (apt-get install chromium)")
		}
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	var title, handling, handlingMet, goodMet, health string
	var shot []byte
	if err := chromedp.Run(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(`tr[data-kpi="handling_rate"]`),
		chromedp.Title(&title),
		chromedp.Text(`tr[data-kpi="handling_rate"] td:nth-child(2)`, &handling),
		chromedp.Text(`tr[data-kpi="handling_rate"] td:nth-child(4)`, &handlingMet),
		chromedp.Text(`tr[data-kpi="good_order"] td:nth-child(4)`, &goodMet),
		chromedp.Text(`#health`, &health),
		chromedp.FullScreenshot(&shot, 100), // 100: PNG,
	); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "gateway-screenshots")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, "monthly-report.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	if !strings.Contains(title, "御山花园 物业服务月报 2026-11") || strings.TrimSpace(handling) != "83.3%" ||
		!strings.Contains(handlingMet, "未达标") || !strings.Contains(goodMet, "达标 met") || !strings.Contains(health, "报警系统健康") {
		t.Fatalf("title %q, handling %q %q, good order %q, health %q", title, handling, handlingMet, goodMet, health)
	}
}
