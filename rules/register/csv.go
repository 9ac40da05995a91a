package register

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/propgate/gateway/internal/cfgerr"
)

// RowError is one problem in an imported file: the line (1 = the header),
// the column and what to fix.
type RowError struct {
	Row    int    `json:"row"`
	Column string `json:"column,omitempty"`
	Msg    string `json:"message"`
}

func (e RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("第 %d 行 row %d, %s: %s", e.Row, e.Row, e.Column, e.Msg)
	}
	return fmt.Sprintf("第 %d 行 row %d: %s", e.Row, e.Row, e.Msg)
}

// ImportError lists every problem found; nothing was saved.
type ImportError struct{ Rows []RowError }

func (e *ImportError) Error() string {
	msgs := make([]string, 0, min(len(e.Rows), 5))
	for i, r := range e.Rows {
		if i == 5 {
			msgs = append(msgs, fmt.Sprintf("… %d more", len(e.Rows)-5))
			break
		}
		msgs = append(msgs, r.Error())
	}
	return "导入失败，未保存任何内容 / import refused, nothing saved: " + strings.Join(msgs, "; ")
}

// ImportResult says what an import did (or, dry, would do).
type ImportResult struct {
	Rows    int      `json:"rows"`
	Assets  []string `json:"assets"`
	Created int      `json:"created"`
	Updated int      `json:"updated"`
	DryRun  bool     `json:"dry_run"`
}

// columns maps the header names offices use (Chinese or English) to fields.
var columns = map[string]string{
	"asset": "asset", "设备编号": "asset", "资产编号": "asset", "编号": "asset",
	"maker": "maker", "制造商": "maker", "生产厂家": "maker", "厂家": "maker",
	"model": "model", "型号": "model", "规格型号": "model",
	"serial": "serial", "出厂编号": "serial", "序列号": "serial",
	"installed": "installed", "安装日期": "installed",
	"location": "location", "安装位置": "location", "位置": "location",
	"contractor": "contractor", "维保单位": "contractor",
	"contractor_phone": "contractor_phone", "维保电话": "contractor_phone", "维保单位电话": "contractor_phone",
	"registration_code": "registration_code", "注册代码": "registration_code", "使用登记证号": "registration_code",
	"cert_kind": "cert_kind", "证书类型": "cert_kind", "检验类型": "cert_kind",
	"cert_number": "cert_number", "证书编号": "cert_number", "检验报告编号": "cert_number",
	"cert_expires": "cert_expires", "有效期至": "cert_expires", "下次检验日期": "cert_expires", "检验有效期": "cert_expires",
	"cert_issuer": "cert_issuer", "检验机构": "cert_issuer",
	"warranty_end": "warranty_end", "保修期至": "warranty_end", "质保到期": "warranty_end",
	"notes": "notes", "备注": "notes",
}

// MaxImportBytes and MaxImportRows bound an import.
const (
	MaxImportBytes = 2 << 20
	MaxImportRows  = 5000
)

var excelDate = regexp.MustCompile(`^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$`)

// normDate accepts what Excel writes (2026/3/1, 2026-03-01, 2026年3月1日).
func normDate(s string) Date {
	s = strings.TrimSpace(s)
	if m := excelDate.FindStringSubmatch(s); m != nil {
		return Date(fmt.Sprintf("%s-%02s-%02s", m[1], m[2], m[3]))
	}
	return Date(s)
}

// ParseCSV reads a register spreadsheet saved as CSV (UTF-8, with or
// without BOM, or the GBK/GB18030 Excel writes on Chinese Windows): one
// row per asset and certificate; rows of one asset add certificates. The
// first row names the columns. Every problem is reported, by row.
func ParseCSV(r io.Reader, known func(string) bool) ([]Entry, int, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(raw) > MaxImportBytes {
		return nil, 0, &ImportError{Rows: []RowError{{Row: 0, Msg: fmt.Sprintf("the file is larger than %d MB; fix: split it", MaxImportBytes>>20)}}}
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(raw) {
		if dec, err := simplifiedchinese.GB18030.NewDecoder().Bytes(raw); err == nil {
			raw = dec
		}
	}
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, 0, &ImportError{Rows: []RowError{{Row: 1, Msg: "no header row; fix: the first row names the columns, e.g. 设备编号,制造商,型号,出厂编号,…"}}}
	}
	idx := map[string]int{}
	var errs []RowError
	for i, h := range header {
		h = strings.TrimSpace(h)
		f, ok := columns[strings.ToLower(h)]
		if !ok {
			if h != "" {
				errs = append(errs, RowError{Row: 1, Column: h, Msg: "unknown column; fix: one of 设备编号 asset, 制造商 maker, 型号 model, 出厂编号 serial, 安装日期 installed, 安装位置 location, 维保单位 contractor, 维保电话 contractor_phone, 注册代码 registration_code, 证书类型 cert_kind, 证书编号 cert_number, 有效期至 cert_expires, 检验机构 cert_issuer, 保修期至 warranty_end, 备注 notes"})
			}
			continue
		}
		if _, dup := idx[f]; dup {
			errs = append(errs, RowError{Row: 1, Column: h, Msg: "the column appears twice"})
		}
		idx[f] = i
	}
	if _, ok := idx["asset"]; !ok {
		errs = append(errs, RowError{Row: 1, Msg: "there is no 设备编号 (asset) column; fix: add it, with the asset ids of the gateway"})
	}
	if len(errs) > 0 {
		return nil, 0, &ImportError{Rows: errs}
	}
	var order []string
	byAsset := map[string]*Entry{}
	firstRow := map[string]int{}
	rows := 0
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, RowError{Row: line, Msg: "not valid CSV: " + err.Error()})
			break
		}
		get := func(f string) string {
			if i, ok := idx[f]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if strings.Join(rec, "") == "" {
			continue // Excel leaves empty rows
		}
		rows++
		if rows > MaxImportRows {
			errs = append(errs, RowError{Row: line, Msg: fmt.Sprintf("more than %d rows; fix: split the file", MaxImportRows)})
			break
		}
		id := get("asset")
		e, seen := byAsset[id]
		if !seen {
			e = &Entry{Asset: id, Maker: get("maker"), Model: get("model"), Serial: get("serial"), Installed: normDate(get("installed")),
				Location: get("location"), Contractor: get("contractor"), ContractorPhone: get("contractor_phone"),
				RegistrationCode: get("registration_code"), WarrantyEnd: normDate(get("warranty_end")), Notes: get("notes"), Certificates: []Certificate{}}
			byAsset[id], firstRow[id] = e, line
			order = append(order, id)
		}
		if k, exp := get("cert_kind"), get("cert_expires"); k != "" || exp != "" {
			e.Certificates = append(e.Certificates, Certificate{Kind: k, Number: get("cert_number"), Expires: normDate(exp), Issuer: get("cert_issuer")})
			if err := e.Validate(known); err != nil {
				errs = append(errs, rowError(line, err))
				e.Certificates = e.Certificates[:len(e.Certificates)-1] // report each row once
				continue
			}
		}
		if !seen {
			if err := e.Validate(known); err != nil {
				errs = append(errs, rowError(line, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, rows, &ImportError{Rows: errs}
	}
	out := make([]Entry, 0, len(order))
	for _, id := range order {
		out = append(out, *byAsset[id])
	}
	return out, rows, nil
}

func rowError(line int, err error) RowError {
	var fe *cfgerr.FieldError
	if errors.As(err, &fe) {
		col := fe.Path
		if strings.HasPrefix(col, "certificates[") {
			if i := strings.Index(col, "."); i >= 0 {
				col = "cert_" + col[i+1:]
			} else {
				col = "certificate"
			}
		}
		return RowError{Row: line, Column: col, Msg: fe.Msg}
	}
	return RowError{Row: line, Msg: err.Error()}
}

// Import applies a register spreadsheet: all rows or none. An imported
// row replaces the asset's fields and certificates; its document links are
// kept. With dry, nothing is saved (the console's preview).
func (s *Service) Import(ctx context.Context, r io.Reader, dry bool, by string) (*ImportResult, error) {
	es, rows, err := ParseCSV(r, s.Known)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Rows: rows, Assets: []string{}, DryRun: dry}
	s.mu.RLock()
	for i := range es {
		old, ok := s.cache[es[i].Asset]
		if ok {
			res.Updated++
			es[i].Version, es[i].Documents = old.Version, old.Documents
		} else {
			res.Created++
		}
		res.Assets = append(res.Assets, es[i].Asset)
	}
	s.mu.RUnlock()
	if dry || len(es) == 0 {
		return res, nil
	}
	if _, err := s.put(ctx, es, by); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, err
		}
		var fe *cfgerr.FieldError
		if errors.As(err, &fe) {
			return nil, &ImportError{Rows: []RowError{{Msg: err.Error()}}}
		}
		return nil, err
	}
	return res, nil
}
