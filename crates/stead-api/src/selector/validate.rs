//! Label key and label value syntax checks with the upstream messages
//! (`k8s.io/apimachinery/pkg/util/validation`), shared with object validation.

/// Upstream `IsQualifiedName`: a label key, `[prefix/]name`.
pub fn label_key_errors(value: &str) -> Vec<String> {
    crate::validation::names::qualified_name(value)
}

/// Upstream `IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    crate::validation::names::label_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_accept_prefixed_and_plain_names() {
        assert!(label_key_errors("app").is_empty());
        assert!(label_key_errors("app.kubernetes.io/name").is_empty());
        assert!(label_key_errors("a_b-c.d").is_empty());
    }

    #[test]
    fn label_key_errors_use_the_upstream_wording() {
        // Ref: apimachinery validation.IsQualifiedName
        assert_eq!(
            label_key_errors("-a"),
            vec![
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(
            label_key_errors("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(label_key_errors("a/b/c").len(), 1);
        assert!(label_key_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(
            label_key_errors(&"a".repeat(64))[0],
            "name part must be no more than 63 characters"
        );
        assert!(
            label_key_errors("Upper.Case/x")[0]
                .starts_with("prefix part a lowercase RFC 1123 subdomain")
        );
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_3-x").is_empty());
        assert_eq!(
            label_value_errors("a b"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
    }
}
