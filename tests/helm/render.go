// render: renders a Helm chart's templates the way `helm template` does, for the tests (Helm is
// not packaged in Debian). Helm's engine is Go's text/template with Sprig's functions; this is
// the same text/template with the few functions the agtrace chart uses, written out here
// (include, toYaml, toJson, toPrettyJson, nindent, indent, quote, default, dict, list, set,
// hasKey, empty, required, trunc, trimSuffix, printf). A chart using anything else fails to
// render, and the test says so.
//
//	render CHART_DIR CONTEXT.json
//
// CONTEXT.json holds {"Values": ..., "Chart": {...}, "Release": {...}}: the test merges the
// chart's values.yaml with its overrides (as `helm --set/-f` would) and passes the result. The
// output is what `helm template` prints: each rendered file as a YAML document under a
// "# Source: CHART/templates/FILE" line; files that render to nothing are left out.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

var plain = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./-]*$`)

func scalar(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprint(x)
	case json.Number:
		return x.String()
	case string:
		switch strings.ToLower(x) {
		case "true", "false", "null", "yes", "no", "on", "off", "~", "y", "n":
			return quoteJSON(x)
		}
		if plain.MatchString(x) {
			return x
		}
		return quoteJSON(x)
	}
	return quoteJSON(fmt.Sprint(v))
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Block-style YAML, keys sorted (as Helm's toYaml), no trailing newline.
func yamlOf(v interface{}, ind string, b *strings.Builder) {
	switch x := v.(type) {
	case map[string]interface{}:
		if len(x) == 0 {
			b.WriteString(ind + "{}\n")
			return
		}
		for _, k := range sortedKeys(x) {
			writeMember(scalar(k)+":", x[k], ind, b)
		}
	case []interface{}:
		if len(x) == 0 {
			b.WriteString(ind + "[]\n")
			return
		}
		for _, e := range x {
			var sub strings.Builder
			switch e.(type) {
			case map[string]interface{}, []interface{}:
				if isEmpty(e) {
					b.WriteString(ind + "- " + strings.TrimSpace(yamlString(e)) + "\n")
					continue
				}
				yamlOf(e, ind+"  ", &sub)
				s := sub.String()
				b.WriteString(ind + "- " + strings.TrimPrefix(s, ind+"  "))
			default:
				b.WriteString(ind + "- " + scalar(e) + "\n")
			}
		}
	default:
		b.WriteString(ind + scalar(v) + "\n")
	}
}

func writeMember(key string, v interface{}, ind string, b *strings.Builder) {
	switch v.(type) {
	case map[string]interface{}, []interface{}:
		if isEmpty(v) {
			b.WriteString(ind + key + " " + strings.TrimSpace(yamlString(v)) + "\n")
			return
		}
		b.WriteString(ind + key + "\n")
		yamlOf(v, ind+"  ", b)
	default:
		b.WriteString(ind + key + " " + scalar(v) + "\n")
	}
}

func isEmpty(v interface{}) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]interface{}:
		return len(x) == 0
	case []interface{}:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		f, _ := x.Float64()
		return f == 0
	}
	return false
}

func yamlString(v interface{}) string {
	var b strings.Builder
	yamlOf(v, "", &b)
	return strings.TrimSuffix(b.String(), "\n")
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func funcs(t **template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := (*t).ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"toYaml": yamlString,
		"toJson": func(v interface{}) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"toPrettyJson": func(v interface{}) (string, error) {
			b, err := json.MarshalIndent(v, "", "  ")
			return string(b), err
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote":   func(v interface{}) string { return quoteJSON(fmt.Sprint(v)) },
		"default": func(d interface{}, v ...interface{}) interface{} {
			if len(v) == 0 || isEmpty(v[0]) {
				return d
			}
			return v[0]
		},
		"dict": func(kv ...interface{}) (map[string]interface{}, error) {
			m := map[string]interface{}{}
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict needs key value pairs")
			}
			for i := 0; i < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m, nil
		},
		"list": func(v ...interface{}) []interface{} { return v },
		"set": func(m map[string]interface{}, k string, v interface{}) map[string]interface{} {
			m[k] = v
			return m
		},
		"hasKey": func(m map[string]interface{}, k string) bool { _, ok := m[k]; return ok },
		"empty":  isEmpty,
		"required": func(msg string, v interface{}) (interface{}, error) {
			if isEmpty(v) {
				return nil, fmt.Errorf("%s", msg)
			}
			return v, nil
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: render CHART_DIR CONTEXT.json")
		os.Exit(2)
	}
	chart := os.Args[1]
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ctx map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ctx); err != nil {
		fmt.Fprintln(os.Stderr, "context:", err)
		os.Exit(2)
	}
	files, _ := filepath.Glob(filepath.Join(chart, "templates", "*"))
	sort.Strings(files)
	var t *template.Template
	t = template.New("chart").Funcs(funcs(&t))
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := t.New(filepath.Base(f)).Parse(string(text)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	name := ctx["Chart"].(map[string]interface{})["Name"]
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "_") || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			continue
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, base, ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(out) == "" {
			continue
		}
		fmt.Printf("---\n# Source: %v/templates/%s\n%s\n", name, base, strings.TrimSpace(out))
	}
}
