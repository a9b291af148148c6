#!/usr/bin/env python3
"""The public API of a crate, one line per item, from rustdoc's JSON output.

    RUSTC_BOOTSTRAP=1 cargo rustdoc -p CRATE --lib --all-features -- \
        -Z unstable-options --output-format json
    tools/public-api/snapshot.py target/doc/CRATE.json > api/CRATE.txt

Every item reachable from the crate root by a public path (re-exports followed, under the
path a user writes), with its kind and, for functions and methods, its signature; struct
fields, enum variants, trait items, inherent methods and the traits each type implements
(auto traits and blanket impls left out). Sorted, so a change to the API is a visible
diff of `api/` in review: `.ci/run` regenerates the files and fails when they differ from
the committed ones. Standard library only; rustdoc's JSON format is unstable, so the
format versions it was written against are checked.
"""

import json
import sys

FORMAT_VERSIONS = {57}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    version = doc.get("format_version")
    if version not in FORMAT_VERSIONS:
        print(
            f"rustdoc JSON format {version}: this script knows {sorted(FORMAT_VERSIONS)}; "
            "check what changed (rustdoc-types' changelog) and add it",
            file=sys.stderr,
        )
        return 1
    lines = Api(doc).lines()
    sys.stdout.write("".join(f"{line}\n" for line in sorted(set(lines))))
    return 0


class Api:
    def __init__(self, doc):
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.root = str(doc["root"])
        self.crate = self.index[self.root]["name"]
        self.out = []
        self.seen = set()

    def item(self, id_):
        return self.index.get(str(id_))

    def lines(self):
        self.module(self.root, self.crate)
        return self.out

    def module(self, id_, path):
        item = self.item(id_)
        for child in item["inner"]["module"]["items"]:
            self.visit(child, path)

    def visit(self, id_, parent, name=None):
        item = self.item(id_)
        if item is None or item.get("visibility") != "public":
            return
        inner_kind, inner = next(iter(item["inner"].items()))
        if inner_kind == "use":
            target = inner.get("id")
            if inner["is_glob"]:
                if target is not None and self.item(target) is not None:
                    t = self.item(target)
                    if "module" in t["inner"]:
                        for child in t["inner"]["module"]["items"]:
                            self.visit(child, parent)
                        return
                self.out.append(f"{parent}::{inner['source']}::* (glob re-export)")
                return
            if target is None or self.item(target) is None:
                self.out.append(f"use {parent}::{inner['name']} = {inner['source']}")
                return
            self.visit(target, parent, inner["name"])
            return
        name = name or item["name"]
        path = f"{parent}::{name}"
        key = (path, str(id_))
        if key in self.seen:
            return
        self.seen.add(key)
        handler = getattr(self, f"k_{inner_kind}", None)
        if handler is None:
            self.out.append(f"{inner_kind} {path}")
        else:
            handler(path, item, inner)

    # --- kinds ---------------------------------------------------------------------------

    def k_module(self, path, item, inner):
        self.out.append(f"mod {path}")
        for child in inner["items"]:
            self.visit(child, path)

    def k_function(self, path, item, inner):
        self.out.append(f"fn {path}{self.generics(inner['generics'])}{self.sig(inner)}")

    def k_constant(self, path, item, inner):
        self.out.append(f"const {path}: {self.ty(inner['type'])}")

    def k_static(self, path, item, inner):
        self.out.append(f"static {path}: {self.ty(inner['type'])}")

    def k_type_alias(self, path, item, inner):
        self.out.append(f"type {path} = {self.ty(inner['type'])}")

    def k_macro(self, path, item, inner):
        self.out.append(f"macro {path}!")

    def k_struct(self, path, item, inner):
        attrs = self.attrs(item)
        self.out.append(f"struct {path}{self.generics(inner['generics'])}{attrs}")
        kind = inner["kind"]
        if "plain" in kind:
            for f in kind["plain"]["fields"]:
                field = self.item(f)
                if field and field.get("visibility") == "public":
                    self.out.append(
                        f"field {path}::{field['name']}: {self.ty(field['inner']['struct_field'])}"
                    )
        elif "tuple" in kind:
            for i, f in enumerate(kind["tuple"]):
                field = self.item(f) if f is not None else None
                if field and field.get("visibility") == "public":
                    self.out.append(f"field {path}::{i}: {self.ty(field['inner']['struct_field'])}")
        self.impls(path, inner["impls"])

    def k_enum(self, path, item, inner):
        self.out.append(f"enum {path}{self.generics(inner['generics'])}{self.attrs(item)}")
        for v in inner["variants"]:
            variant = self.item(v)
            if not variant:
                continue
            kind = variant["inner"]["variant"]["kind"]
            shape = ""
            if isinstance(kind, dict) and "tuple" in kind:
                types = [
                    self.ty(self.item(f)["inner"]["struct_field"]) if f is not None else "_"
                    for f in kind["tuple"]
                ]
                shape = f"({', '.join(types)})"
            elif isinstance(kind, dict) and "struct" in kind:
                fields = []
                for f in kind["struct"]["fields"]:
                    field = self.item(f)
                    fields.append(f"{field['name']}: {self.ty(field['inner']['struct_field'])}")
                shape = " { " + ", ".join(fields) + " }"
            self.out.append(f"variant {path}::{variant['name']}{shape}{self.attrs(variant)}")
        self.impls(path, inner["impls"])

    def k_union(self, path, item, inner):
        self.out.append(f"union {path}")
        self.impls(path, inner["impls"])

    def k_trait(self, path, item, inner):
        self.out.append(f"trait {path}{self.generics(inner['generics'])}")
        for t in inner["items"]:
            member = self.item(t)
            if not member:
                continue
            kind, body = next(iter(member["inner"].items()))
            if kind == "function":
                self.out.append(
                    f"trait-fn {path}::{member['name']}{self.generics(body['generics'])}"
                    f"{self.sig(body)}"
                )
            else:
                self.out.append(f"trait-{kind} {path}::{member['name']}")

    def impls(self, path, impl_ids):
        for i in impl_ids:
            impl = self.item(i)
            if not impl:
                continue
            body = impl["inner"]["impl"]
            if body.get("is_synthetic") or body.get("blanket_impl") is not None:
                continue
            trait = body.get("trait")
            if trait is not None:
                self.out.append(f"impl {self.path_ty(trait)} for {path}")
                continue
            for m in body["items"]:
                member = self.item(m)
                if not member or member.get("visibility") != "public":
                    continue
                kind, mbody = next(iter(member["inner"].items()))
                if kind == "function":
                    self.out.append(
                        f"method {path}::{member['name']}{self.generics(mbody['generics'])}"
                        f"{self.sig(mbody)}"
                    )
                else:
                    self.out.append(f"assoc-{kind} {path}::{member['name']}")

    # --- rendering -----------------------------------------------------------------------

    @staticmethod
    def attrs(item):
        text = " ".join(str(a) for a in item.get("attrs", []))
        return " #[non_exhaustive]" if "non_exhaustive" in text else ""

    def sig(self, fn):
        sig = fn["sig"]
        header = fn.get("header", {})
        prefix = "async " if header.get("is_async") else ""
        args = ", ".join(f"{name}: {self.ty(t)}" for name, t in sig["inputs"])
        out = f"({args})"
        if sig.get("output") is not None:
            out += f" -> {self.ty(sig['output'])}"
        return f"{prefix}{out}" if not prefix else f" {prefix.strip()} {out}"

    def generics(self, generics):
        params = []
        for p in generics.get("params", []):
            kind = p.get("kind", {})
            if "lifetime" in kind:
                continue
            if "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue
                bounds = [self.bound(b) for b in kind["type"].get("bounds", [])]
                params.append(p["name"] + (": " + " + ".join(bounds) if bounds else ""))
            elif "const" in kind:
                params.append(f"const {p['name']}: {self.ty(kind['const']['type'])}")
        return f"<{', '.join(params)}>" if params else ""

    def bound(self, b):
        if "trait_bound" in b:
            return self.path_ty(b["trait_bound"]["trait"])
        if "outlives" in b:
            return b["outlives"]
        return "?"

    def path_ty(self, p):
        name = p.get("path") or p.get("name") or "?"
        args = p.get("args")
        return name + self.args(args)

    def args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            parts = []
            for a in args["angle_bracketed"]["args"]:
                if "type" in a:
                    parts.append(self.ty(a["type"]))
                elif "const" in a:
                    parts.append(str(a["const"].get("expr", "_")))
            for c in args["angle_bracketed"].get("constraints", []):
                binding = c.get("binding", {})
                if "equality" in binding and "type" in binding["equality"]:
                    parts.append(f"{c['name']} = {self.ty(binding['equality']['type'])}")
                else:
                    parts.append(c["name"])
            return f"<{', '.join(parts)}>" if parts else ""
        if "parenthesized" in args:
            inputs = ", ".join(self.ty(t) for t in args["parenthesized"]["inputs"])
            output = args["parenthesized"].get("output")
            return f"({inputs})" + (f" -> {self.ty(output)}" if output else "")
        return ""

    def ty(self, t):
        if t is None:
            return "()"
        kind, body = next(iter(t.items()))
        if kind == "resolved_path":
            return self.path_ty(body)
        if kind == "generic":
            return body
        if kind == "primitive":
            return body
        if kind == "borrowed_ref":
            mut = "mut " if body["is_mutable"] else ""
            return f"&{mut}{self.ty(body['type'])}"
        if kind == "raw_pointer":
            return f"*{'mut' if body['is_mutable'] else 'const'} {self.ty(body['type'])}"
        if kind == "slice":
            return f"[{self.ty(body)}]"
        if kind == "array":
            return f"[{self.ty(body['type'])}; {body['len']}]"
        if kind == "tuple":
            return f"({', '.join(self.ty(x) for x in body)})"
        if kind == "impl_trait":
            return "impl " + " + ".join(self.bound(b) for b in body)
        if kind == "dyn_trait":
            traits = [self.path_ty(tr["trait"]) for tr in body["traits"]]
            return "dyn " + " + ".join(traits)
        if kind == "qualified_path":
            return f"<{self.ty(body['self_type'])}>::{body['name']}"
        if kind == "function_pointer":
            return "fn(..)"
        return kind


if __name__ == "__main__":
    sys.exit(main())
