//! A minimal `/openapi/v2` document in the protobuf form (gnostic `openapi.v2.Document`) that
//! kubectl 1.27 and 1.28 fetch before `apply`, `create -f` and `replace -f`.
//!
//! Those kubectl versions only read it to learn whether the server validates fields itself: they
//! look for each kind's PATCH operation (by its `x-kubernetes-group-version-kind` extension) and a
//! `fieldValidation` query parameter on it. When found they send `?fieldValidation=Strict` and skip
//! client-side validation, and with no `definitions` they build strategic merge patches from their
//! compiled-in types. `kubectl explain` on those versions needs full v2 definitions, which this
//! document does not carry.
//!
//! Field numbers are those of gnostic's `OpenAPIv2.proto`.

use crate::resource::RESOURCES;

/// Appends a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a length-delimited field (strings and embedded messages).
fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    varint(out, (u64::from(field) << 3) | 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn message(fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut m = Vec::new();
    fields(&mut m);
    m
}

/// `ParametersItem{parameter: Parameter{non_body_parameter: NonBodyParameter{query_parameter_sub_schema: {in, name, type}}}}`
fn query_parameter(name: &str, ty: &str) -> Vec<u8> {
    let sub = message(|m| {
        bytes_field(m, 2, b"query");
        bytes_field(m, 4, name.as_bytes());
        bytes_field(m, 6, ty.as_bytes());
    });
    let non_body = message(|m| bytes_field(m, 3, &sub));
    let parameter = message(|m| bytes_field(m, 2, &non_body));
    message(|m| bytes_field(m, 1, &parameter))
}

/// `NamedAny{name: "x-kubernetes-group-version-kind", value: Any{yaml}}`
fn gvk_extension(group: &str, version: &str, kind: &str) -> Vec<u8> {
    let yaml = format!("group: {group:?}\nkind: {kind}\nversion: {version}\n");
    let any = message(|m| bytes_field(m, 2, yaml.as_bytes()));
    message(|m| {
        bytes_field(m, 1, b"x-kubernetes-group-version-kind");
        bytes_field(m, 2, &any);
    })
}

/// An `Operation` with the write parameters and the kind's GVK extension.
fn write_operation(group: &str, version: &str, kind: &str, patch: bool) -> Vec<u8> {
    message(|m| {
        for (name, ty) in [
            ("dryRun", "string"),
            ("fieldManager", "string"),
            ("fieldValidation", "string"),
        ] {
            bytes_field(m, 8, &query_parameter(name, ty));
        }
        if patch {
            bytes_field(m, 8, &query_parameter("force", "boolean"));
        }
        bytes_field(m, 13, &gvk_extension(group, version, kind));
    })
}

/// The serialized document.
pub fn document() -> Vec<u8> {
    let mut paths = Vec::new();
    for r in RESOURCES {
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let scope = if r.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let collection = format!("{base}{scope}/{}", r.plural);
        let item = format!("{collection}/{{name}}");
        let post = write_operation(r.group, r.version, r.kind, false);
        let put = write_operation(r.group, r.version, r.kind, false);
        let patch = write_operation(r.group, r.version, r.kind, true);
        let collection_item = message(|m| bytes_field(m, 4, &post));
        let item_item = message(|m| {
            bytes_field(m, 3, &put);
            bytes_field(m, 8, &patch);
        });
        // Reviews are only POSTed: no item path, as upstream.
        let mut entries = vec![(collection, collection_item)];
        if !r.is_create_only() {
            entries.push((item, item_item));
        }
        for (path, item) in entries {
            let named = message(|m| {
                bytes_field(m, 1, path.as_bytes());
                bytes_field(m, 2, &item);
            });
            bytes_field(&mut paths, 2, &named);
        }
    }
    let info = message(|m| {
        bytes_field(m, 1, b"Kubernetes");
        bytes_field(m, 2, super::KUBERNETES_VERSION.as_bytes());
    });
    message(|m| {
        bytes_field(m, 1, b"2.0");
        bytes_field(m, 2, &info);
        bytes_field(m, 8, &paths);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the length-delimited fields of one message: (field number, payload).
    fn fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
        fn read_varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = read_varint(&mut b);
            assert_eq!(key & 7, 2, "only length-delimited fields are written");
            let len = read_varint(&mut b) as usize;
            out.push((key >> 3, &b[..len]));
            b = &b[len..];
        }
        out
    }

    #[test]
    fn the_statefulset_patch_operation_declares_field_validation_and_its_kind() {
        let doc = document();
        let top = fields(&doc);
        assert_eq!(top[0], (1, &b"2.0"[..]));
        let paths = top.iter().find(|(f, _)| *f == 8).unwrap().1;
        let item = fields(paths)
            .into_iter()
            .map(|(_, named)| fields(named))
            .find(|n| n[0].1 == b"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}")
            .expect("statefulset item path");
        let path_item = fields(item[1].1);
        let patch = fields(path_item.iter().find(|(f, _)| *f == 8).unwrap().1);
        let text = String::from_utf8_lossy(
            &patch
                .iter()
                .flat_map(|(_, p)| p.to_vec())
                .collect::<Vec<u8>>(),
        )
        .into_owned();
        assert!(text.contains("fieldValidation"), "{text}");
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(
            text.contains("group: \"apps\"\nkind: StatefulSet\nversion: v1\n"),
            "{text}"
        );
    }
}
