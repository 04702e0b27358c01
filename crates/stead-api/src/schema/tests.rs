use super::*;

#[test]
fn dump_for_exploration() {
    let (bytes, _) = openapi_document("apis/apps/v1").unwrap();
    std::fs::write("/tmp/schemawork/apps.json", bytes).unwrap();
    let (bytes, _) = openapi_document("api/v1").unwrap();
    std::fs::write("/tmp/schemawork/core.json", bytes).unwrap();
}

#[test]
fn dump_required() {
    let mut s = String::new();
    for (k, v) in definitions() {
        if let Some(r) = v.get("required") {
            s.push_str(&format!("{k} {r}\n"));
        }
    }
    std::fs::write("/tmp/schemawork/required.txt", s).unwrap();
}
