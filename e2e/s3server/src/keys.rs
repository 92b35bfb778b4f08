//! A mutable set of access keys, shared by the s3s auth provider and the test that owns it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

/// Access key id → secret key, changeable while the server runs. Cloning shares the set.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<HashMap<String, String>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.read().unwrap().keys().cloned().collect();
        f.debug_struct("KeyRing")
            .field("access_key_ids", &ids)
            .finish()
    }
}

impl KeyRing {
    /// Adds (or replaces) a key; requests signed with it are accepted from now on.
    pub fn add(&self, access_key_id: &str, secret_access_key: &str) {
        self.keys
            .write()
            .unwrap()
            .insert(access_key_id.to_owned(), secret_access_key.to_owned());
    }

    /// Revokes a key; returns whether it existed. Later requests get `NotSignedUp`, as
    /// s3s's own provider answers for an unknown key.
    pub fn revoke(&self, access_key_id: &str) -> bool {
        self.keys.write().unwrap().remove(access_key_id).is_some()
    }

    pub fn contains(&self, access_key_id: &str) -> bool {
        self.keys.read().unwrap().contains_key(access_key_id)
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyRing {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.read().unwrap().get(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.as_str())),
            None => Err(s3_error!(NotSignedUp, "Your account is not signed up")),
        }
    }
}
