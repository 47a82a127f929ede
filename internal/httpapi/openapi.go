package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// buildOpenAPI renders the OpenAPI 3.1 document from the route table.
func (s *server) buildOpenAPI() []byte {
	g := &schemaGen{defs: map[string]any{}}
	g.defs["Error"] = g.schema(reflect.TypeFor[ErrorBody]())
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": operationID(rt),
			"tags":        []string{tag(rt.Path)},
		}
		var params []any
		for _, p := range pathParams(rt.Path) {
			params = append(params, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range queryParams(rt) {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Request))}}}
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		if rt.Response != nil && status != http.StatusNoContent {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Response))}}
		}
		op["responses"] = map[string]any{
			strconv.Itoa(status): ok,
			"default": map[string]any{"description": "error", "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}},
		}
		if rt.Access != Public {
			op["security"] = []any{map[string]any{"cookie": []string{}}, map[string]any{"bearer": []string{}}}
		} else {
			op["security"] = []any{}
		}
		op["x-access"] = rt.Access.String()
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Parley API", "version": "1",
			"description": "Parley team inbox. Errors are {\"error\":{\"code\",\"message\",\"fields\"}}. Cookie-authenticated unsafe requests need X-CSRF-Token."},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		panic(err) // the document is built from static types
	}
	return b
}

func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1"), "/") {
		seg = strings.Trim(seg, "{}.")
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	if rt.Path == "/" {
		b.WriteString("Root")
	}
	return b.String()
}

func tag(path string) string {
	p := strings.TrimPrefix(path, "/api/v1/workspaces/{ws}")
	if p == path {
		p = strings.TrimPrefix(path, "/api/v1")
	}
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")[0]
	if seg == "" || strings.HasPrefix(seg, "{") {
		return "workspaces"
	}
	return seg
}

// queryParams lists documented query parameters, parsed from the summary's (?a=&b=) hint.
func queryParams(rt Route) []string {
	i := strings.Index(rt.Summary, "(?")
	if i < 0 {
		return nil
	}
	var out []string
	for _, kv := range strings.Split(strings.TrimSuffix(rt.Summary[i+2:], ")"), "&") {
		if k, _, _ := strings.Cut(kv, "="); k != "" {
			out = append(out, k)
		}
	}
	return out
}

type schemaGen struct{ defs map[string]any }

var timeType = reflect.TypeFor[time.Time]()
var rawType = reflect.TypeFor[json.RawMessage]()

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		return g.schema(t.Elem())
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t == rawType {
		return map[string]any{}
	}
	if strings.HasPrefix(t.Name(), "Optional[") && t.PkgPath() == reflect.TypeFor[inbox.Code]().PkgPath() {
		f, _ := t.FieldByName("Value")
		return g.schema(f.Type)
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := defName(t)
		if name != "" {
			if _, ok := g.defs[name]; !ok {
				g.defs[name] = map[string]any{} // break recursion
				g.defs[name] = g.object(t)
			}
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return g.object(t)
	}
	return map[string]any{}
}

func defName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		return ""
	}
	n = strings.NewReplacer("[", "_", "]", "", "*", "", " ", "").Replace(n)
	// Generic names carry the full package path: keep only the last element.
	if i := strings.Index(n, "_"); i >= 0 {
		inner := n[i+1:]
		if j := strings.LastIndex(inner, "."); j >= 0 {
			inner = inner[j+1:]
		}
		n = n[:i] + "_" + inner
	}
	return n
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	g.fields(t, props)
	return map[string]any{"type": "object", "properties": props}
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tagv := f.Tag.Get("json")
		name, _, _ := strings.Cut(tagv, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, props)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
	}
}
