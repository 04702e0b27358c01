//! Element order of merged lists (upstream `normalizeElementOrder` / `mergeSortedSlice`).
//!
//! After a merge, items named by the patch keep the patch's relative order, items only on the
//! server keep their original relative order, and the two runs are interleaved using the
//! original list as the tie-breaker, so untouched items stay where they were.

use serde_json::Value;

/// Position of `item` in `list`: by merge-key value for lists of maps, by equality otherwise.
pub(crate) fn index_of(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    match merge_key {
        Some(k) => {
            let wanted = item.get(k)?;
            list.iter().position(|v| v.get(k) == Some(wanted))
        }
        None => list.iter().position(|v| v == item),
    }
}

/// Sorts `patch_items` by `patch_order` and `server_only` by `server_order`, then interleaves
/// them: a server-only item goes first when the original list had it before the next patch item.
pub(crate) fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    patch_items.sort_by_key(|v| index_of(patch_order, v, merge_key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_of(server_order, v, merge_key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, merge_key), index_of(server_order, r, merge_key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_only_items_keep_their_place_between_patched_items() {
        let server = vec![json!("a"), json!("b"), json!("c")];
        let out = normalize_element_order(
            vec![json!("c"), json!("d")],
            vec![json!("a"), json!("b")],
            &[json!("c"), json!("d")],
            &server,
            None,
        );
        assert_eq!(out, vec![json!("a"), json!("b"), json!("c"), json!("d")]);
    }

    #[test]
    fn patch_order_wins_over_server_order_for_patched_items() {
        let server = vec![json!({"name": "a"}), json!({"name": "b"})];
        let order = vec![json!({"name": "b"}), json!({"name": "a"})];
        let out = normalize_element_order(server.clone(), vec![], &order, &server, Some("name"));
        assert_eq!(out, order);
    }
}
