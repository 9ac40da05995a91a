package planned

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	"text/template"
	"time"
)

// Notice is the residents' notice for a work: the text for the WeChat
// group and the same words as a printable page for the entrance boards.
type Notice struct {
	Work  int64  `json:"work"`
	Title string `json:"title"` // 停电通知
	Text  string `json:"text"`
	// Warning repeats the work's notice warning (less than 24 h ahead).
	Warnings []string `json:"warnings"`
}

type noticeData struct {
	Heading, Reason, Start, End, Where, Lines, What string
	Items                                           []string
	Phone, Signature, Date                          string
}

var noticeText = template.Must(template.New("notice").Parse(`{{.Heading}}

尊敬的各位业主、住户：

因{{.Reason}}，定于{{.Start}}至{{.End}}对{{.Where}}{{.What}}{{if .Lines}}（{{.Lines}}）{{end}}。届时将暂停{{if eq .What "停电"}}供电{{else if eq .What "停水"}}供水{{else}}相关设备的使用{{end}}，请各位业主、住户提前做好准备。

{{range $i, $s := .Items}}{{if $i}}
{{end}}{{$s}}{{end}}

如遇特殊情况，恢复时间可能提前或推迟，请以现场通知为准。如有疑问，请联系{{.Signature}}{{if .Phone}}（电话：{{.Phone}}）{{end}}。
给您带来的不便，敬请谅解，感谢您的理解与支持！

{{.Signature}}
{{.Date}}
`))

// data builds what the notice says from the work.
func (s *Service) noticeData(w *Work) noticeData {
	loc := s.cfg.location()
	day := func(t time.Time) string {
		t = t.In(loc)
		week := []string{"日", "一", "二", "三", "四", "五", "六"}[t.Weekday()]
		return t.Format("2006年1月2日") + "（星期" + week + "）" + t.Format("15:04")
	}
	end := day(w.End)
	if y1, m1, d1 := w.Start.In(loc).Date(); true {
		if y2, m2, d2 := w.End.In(loc).Date(); y1 == y2 && m1 == m2 && d1 == d2 {
			end = w.End.In(loc).Format("15:04")
		}
	}
	where := w.Area
	if where == "" {
		where = strings.Join(w.Buildings, "、")
	}
	if where == "" {
		var names []string
		for _, id := range w.Assets {
			names = append(names, s.assetName(id))
		}
		where = strings.Join(names, "、")
	}
	d := noticeData{Heading: w.Kind.ZH() + "通知", Reason: strings.TrimRight(strings.TrimSpace(w.Reason), "。，,."), Start: day(w.Start), End: end,
		Where: where, Lines: w.Lines, What: w.Kind.ZH(), Phone: s.cfg.Phone, Signature: s.cfg.Signature}
	if w.Kind == Maintenance {
		d.Heading, d.What = "设备维保通知", "进行设备维保"
	}
	var items []string
	switch w.Kind {
	case Power:
		lift := w.Elevators
		if lift == "" {
			lift = "停电期间电梯停止运行，请勿乘坐电梯；停电开始前请勿滞留轿厢内。"
		}
		items = append(items, "电梯："+lift,
			"二次供水水泵停电期间停止运行，高层住户可能停水，请提前储存生活用水。",
			"请关闭家中电器电源，防止来电时损坏电器；停电期间注意用火安全，请勿使用明火照明。")
	case Water:
		items = append(items, "请提前储存生活用水；停水期间请关闭家中水龙头，防止来水时跑水。",
			"恢复供水初期水质可能浑浊，请放水片刻后再使用。")
		if w.Elevators != "" {
			items = append(items, "电梯："+w.Elevators)
		}
	default:
		if w.Elevators != "" {
			items = append(items, "电梯："+w.Elevators)
		}
	}
	if strings.TrimSpace(w.Safety) != "" {
		items = append(items, "安全提示："+strings.TrimSpace(w.Safety))
	}
	for i := range items {
		if !strings.HasSuffix(items[i], "。") && !strings.HasSuffix(items[i], "！") {
			items[i] += "。"
		}
		items[i] = string(rune('1'+i)) + ". " + items[i]
	}
	d.Items = items
	at := w.AnnouncedAt
	if at.IsZero() {
		at = s.now()
	}
	d.Date = at.In(loc).Format("2006年1月2日")
	return d
}

// Notice writes the residents' notice for a work.
func (s *Service) notice(w *Work) Notice {
	var b bytes.Buffer
	d := s.noticeData(w)
	_ = noticeText.Execute(&b, d) // the template is fixed and its data strings: it cannot fail
	return Notice{Work: w.ID, Title: d.Heading, Text: b.String(), Warnings: append([]string{}, w.Warnings...)}
}

var noticePage = htmltemplate.Must(htmltemplate.New("page").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:"Noto Serif CJK SC","Songti SC",serif;max-width:42em;margin:3em auto;font-size:18pt;line-height:1.8;color:#000;background:#fff}
h1{text-align:center;font-size:28pt;letter-spacing:.5em;margin-bottom:1.5em}
p{white-space:pre-wrap;margin:0}
@media print{body{margin:1.5cm auto}}
</style></head>
<body><h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))

// NoticeHTML is the notice as a printable page (A4, large type) for the
// entrance boards; everything written by people is escaped.
func NoticeHTML(n Notice) []byte {
	body := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(n.Text), n.Title))
	var b bytes.Buffer
	_ = noticePage.Execute(&b, struct{ Title, Body string }{n.Title, body})
	return b.Bytes()
}
