//! The generic registry: verb semantics written once for every resource (upstream
//! `registry/generic/registry/store.go`). Per-kind behaviour plugs in through [`strategy`] and the
//! pure defaulting/validation of `stead_api`.
//!
//! Start at [`Registry::create`], [`Registry::update_with`] and [`Registry::delete`]; every write
//! goes through [`Registry::commit_update`] or the create path, so conflicts, generation,
//! dry-run, managed fields and finalizer-driven removal behave the same for all kinds.

pub mod admission;
pub mod codec;
mod delete;
pub mod list;
pub mod node_port;
pub mod service_ip;
pub mod strategy;

use std::sync::Arc;

use serde_json::{Value, json};
use stead_api::defaults::Features;
use stead_api::{ApiError, FieldError, ResourceType, meta, schema, validation};
use stead_storage::{Storage, StorageError};

pub use delete::{DeleteOptions, Deleted};
pub use list::{ListPage, ListQuery};

/// How unknown fields in a request body are treated (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    #[default]
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Ignore") => Ok(Self::Ignore),
            Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// Options shared by create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub validation: FieldValidation,
    /// Leave `metadata.managedFields` alone: a server-side apply recorded them already, and the
    /// server's own bootstrap objects need none.
    pub skip_managed_fields: bool,
}

/// Records in `obj`'s `managedFields` the fields this write's manager set (`unknown` when the
/// request named none), against `current` (`None` on create), unless `opts` skip that.
fn record_managed_fields(
    rt: &ResourceType,
    opts: &WriteOptions,
    current: Option<&Value>,
    obj: &mut Value,
) {
    if opts.skip_managed_fields {
        return;
    }
    let manager = if opts.field_manager.is_empty() {
        "unknown"
    } else {
        &opts.field_manager
    };
    let def = schema::definition_name(rt.group, rt.version, rt.kind).unwrap_or("");
    stead_api::patch::record_update(
        current,
        obj,
        manager,
        &rt.api_version(),
        &now_rfc3339(),
        schema::definitions(),
        def,
    );
}

/// A successful write: the object as stored (or as it would be, for dry runs) and warnings for
/// the `Warning` response header.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

/// The generic store over one [`Storage`].
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Storage>,
    features: Features,
}

/// How many times an unconditional write is retried when it loses a compare-and-swap race.
const MAX_RETRIES: usize = 16;

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn storage_error(rt: &ResourceType, name: &str, e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound { .. } => ApiError::not_found(rt.group, rt.plural, name),
        StorageError::AlreadyExists { .. } => ApiError::already_exists(rt.group, rt.plural, name),
        StorageError::Conflict { .. } => ApiError::stale(rt.group, rt.plural, name),
        StorageError::Compacted {
            requested,
            compacted,
        } => ApiError::gone(requested, compacted),
        other => ApiError::internal(other),
    }
}

/// Random suffix for `generateName`, from upstream's alphabet without vowels and lookalikes.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl Registry {
    pub fn new(store: Arc<dyn Storage>, features: Features) -> Self {
        Self { store, features }
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    pub async fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let kv = self
            .store
            .get(&rt.key(ns, name))
            .await
            .map_err(|e| storage_error(rt, name, e))?
            .ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))?;
        codec::decode_kv(rt, &kv)
    }

    /// Decodes a request body for `rt` (or for the kind a subresource speaks): checks unknown
    /// fields per `fieldValidation`, type-checks, and applies defaults.
    pub fn admit(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        body: Value,
        validation: FieldValidation,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let mut warnings = Vec::new();
        // Ignore needs no schema walk: the typed round trip below drops unknown fields anyway.
        let def = match validation {
            FieldValidation::Ignore => None,
            _ => schema::definition_name(group, version, kind),
        };
        if let Some(def) = def {
            let unknown = schema::unknown_fields(def, &body);
            if !unknown.is_empty() {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                match validation {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => warnings = list,
                    FieldValidation::Ignore => {}
                }
            }
        }
        let mut obj = codec::normalize(group, version, kind, body)?;
        stead_api::defaults::apply(group, kind, &mut obj, self.features);
        Ok((obj, warnings))
    }

    async fn ensure_namespace(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let nsrt =
            stead_api::resource::find("", "v1", "namespaces").expect("namespaces are served");
        match self
            .store
            .get(&nsrt.key("", ns))
            .await
            .map_err(ApiError::internal)?
        {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(kv) => {
                let obj = codec::decode_kv(nsrt, &kv)?;
                if meta::is_deleting(&obj) {
                    Err(ApiError::forbidden(
                        rt.group,
                        rt.plural,
                        "",
                        &format!(
                            "unable to create new content in namespace {ns} because it is being terminated"
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> ApiError {
        ApiError::invalid(rt.group, rt.kind, name, errors)
    }

    /// Create (POST). `body` must already be admitted (see [`Registry::admit`]).
    pub async fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        // Metadata the server owns.
        let body_ns = meta::namespace(&obj).to_string();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta::set_str(&mut obj, "namespace", ns);
        } else {
            meta::set_str(&mut obj, "namespace", "");
        }
        if !meta::resource_version(&obj).is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generate = meta::str_field(&obj, "generateName").to_string();
        if meta::name(&obj).is_empty() && !generate.is_empty() {
            let name = format!("{generate}{}", random_suffix());
            meta::set_str(&mut obj, "name", &name);
        }
        let name = meta::name(&obj).to_string();
        {
            let m = meta::metadata_mut(&mut obj);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("generation");
        }
        strategy::prepare_create(rt, &mut obj);
        stead_api::defaults::drop_disabled_fields(rt.group, rt.kind, &mut obj, None, self.features);
        self.admit_create(rt, &mut obj).await?;

        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        errors.extend(validation::validate_create(
            rt.group,
            rt.kind,
            &obj,
            self.features,
        ));
        if !errors.is_empty() {
            return Err(Self::invalid(rt, &name, &errors));
        }
        self.ensure_namespace(rt, ns).await?;

        record_managed_fields(rt, opts, None, &mut obj);

        // A Service's addresses and node ports are allocated for dry runs too, and given back
        // at once, so the answer shows what a real create would get.
        let is_service = (rt.group, rt.kind) == ("", "Service");
        let reserved = if is_service {
            let range = service_ip::ServiceRange::default();
            service_ip::assign(self.store.as_ref(), range, &mut obj).await?
        } else {
            None
        };
        let ports = if is_service {
            match node_port::reserve(self.store.as_ref(), &mut obj, None).await {
                Ok(ports) => ports,
                Err(e) => {
                    if let Some(ip) = &reserved {
                        service_ip::release(self.store.as_ref(), ip).await;
                    }
                    return Err(e);
                }
            }
        } else {
            Vec::new()
        };
        if opts.dry_run {
            if let Some(ip) = &reserved {
                service_ip::release(self.store.as_ref(), ip).await;
            }
            node_port::release(self.store.as_ref(), ports).await;
            return Ok(Written {
                object: obj,
                warnings: Vec::new(),
                created: true,
            });
        }
        let rev = match self
            .store
            .create(&rt.key(ns, &name), codec::encode_stored(rt, &obj))
            .await
        {
            Ok(rev) => rev,
            Err(e) => {
                if let Some(ip) = reserved {
                    service_ip::release(self.store.as_ref(), &ip).await;
                }
                node_port::release(self.store.as_ref(), ports).await;
                return Err(storage_error(rt, &name, e));
            }
        };
        meta::set_str(&mut obj, "resourceVersion", &rev.to_string());
        Ok(Written {
            object: obj,
            warnings: Vec::new(),
            created: true,
        })
    }

    /// Writes `new` over `current` (read at its `resourceVersion`) after the update strategy,
    /// validation, defaulting and managed-fields bookkeeping. Skips the write when nothing
    /// changed; removes the object when it is being deleted and its last finalizer is gone.
    pub async fn commit_update(
        &self,
        rt: &ResourceType,
        subresource: Option<&str>,
        current: &Value,
        mut new: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let ns = meta::namespace(current).to_string();
        let name = meta::name(current).to_string();
        let current_rv = meta::resource_version(current).to_string();

        let body_name = meta::name(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let wanted_rv = meta::resource_version(&new).to_string();
        if !wanted_rv.is_empty() && wanted_rv != current_rv {
            return Err(ApiError::stale(rt.group, rt.plural, &name));
        }

        // `status` writes touch only status; other subresources (binding) are server-internal
        // writers that set exactly what they mean to.
        match subresource {
            Some("status") => strategy::prepare_status_update(&mut new, current),
            Some("finalize") => strategy::prepare_finalize(&mut new, current),
            Some(_) => {}
            None => {
                strategy::prepare_update(rt, &mut new, current);
                stead_api::defaults::drop_disabled_fields(
                    rt.group,
                    rt.kind,
                    &mut new,
                    Some(current),
                    self.features,
                );
            }
        }
        // System metadata is the server's.
        {
            let old_meta = current
                .get("metadata")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let m = meta::metadata_mut(&mut new);
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns));
            }
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            if !strategy::tracks_generation(rt) {
                match old_meta.get("generation") {
                    Some(v) => m.insert("generation".into(), v.clone()),
                    None => m.remove("generation"),
                };
            }
            if !m.contains_key("managedFields")
                && let Some(mf) = old_meta.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
            m.insert("resourceVersion".into(), json!(current_rv));
        }

        let errors = match subresource {
            Some("status") => validation::validate_status_update(rt.group, rt.kind, &new, current),
            Some(_) => Vec::new(),
            None => validation::validate_update(rt.group, rt.kind, &new, current, self.features),
        };
        if !errors.is_empty() {
            return Err(Self::invalid(rt, &name, &errors));
        }

        let finalize = strategy::ready_to_remove(rt, &new);
        if new == *current && !finalize {
            return Ok(new);
        }
        record_managed_fields(rt, opts, Some(current), &mut new);
        let is_service = (rt.group, rt.kind) == ("", "Service") && !finalize;
        let ports = if is_service {
            node_port::reserve(self.store.as_ref(), &mut new, Some(current)).await?
        } else {
            Vec::new()
        };
        if opts.dry_run {
            node_port::release(self.store.as_ref(), ports).await;
            return Ok(new);
        }
        let expected: u64 = current_rv
            .parse()
            .map_err(|_| ApiError::internal("stored object has no revision"))?;
        let key = rt.key(&ns, &name);
        if finalize {
            let (rev, _) = self
                .store
                .delete(&key, Some(expected))
                .await
                .map_err(|e| storage_error(rt, &name, e))?;
            self.released(rt, &new).await;
            meta::set_str(&mut new, "resourceVersion", &rev.to_string());
            return Ok(new);
        }
        let rev = match self
            .store
            .update(&key, codec::encode_stored(rt, &new), expected)
            .await
        {
            Ok(rev) => rev,
            Err(e) => {
                node_port::release(self.store.as_ref(), ports).await;
                return Err(storage_error(rt, &name, e));
            }
        };
        if is_service {
            let dropped = node_port::in_use(current)
                .into_iter()
                .filter(|n| !node_port::in_use(&new).contains(n));
            node_port::release(self.store.as_ref(), dropped.collect::<Vec<_>>()).await;
        }
        meta::set_str(&mut new, "resourceVersion", &rev.to_string());
        Ok(new)
    }

    /// Read-modify-write with retries: `mutate` gets the current object and returns the desired
    /// one. A desired `resourceVersion` other than the one read is a failed precondition (409
    /// Conflict); a write that loses a race to another writer is redone on the fresh object.
    /// `create` is called instead when the object does not exist (server-side apply, PUT).
    pub async fn update_with<F>(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(Option<&Value>) -> Result<Value, ApiError>,
    {
        for _ in 0..MAX_RETRIES {
            let current = match self
                .store
                .get(&rt.key(ns, name))
                .await
                .map_err(|e| storage_error(rt, name, e))?
            {
                Some(kv) => codec::decode_kv(rt, &kv)?,
                None => {
                    if subresource.is_some() {
                        return Err(ApiError::not_found(rt.group, rt.plural, name));
                    }
                    let obj = mutate(None)?;
                    let mut written = self.create(rt, ns, obj, opts).await?;
                    written.created = true;
                    return Ok(written);
                }
            };
            let desired = mutate(Some(&current))?;
            // A resourceVersion the caller asked for (a PUT body's, or one a patch sets) is a
            // precondition on the object as read; anything else is the current one carried
            // through, and a write that loses the race to another writer is simply redone.
            let wanted = meta::resource_version(&desired);
            if !wanted.is_empty() && wanted != meta::resource_version(&current) {
                return Err(ApiError::stale(rt.group, rt.plural, name));
            }
            match self
                .commit_update(rt, subresource, &current, desired, opts)
                .await
            {
                Err(e) if e.code == 409 && e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
                Ok(object) => {
                    return Ok(Written {
                        object,
                        warnings: Vec::new(),
                        created: false,
                    });
                }
            }
        }
        Err(ApiError::stale(rt.group, rt.plural, name))
    }
}
