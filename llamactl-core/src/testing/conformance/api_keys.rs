//! The rules of an [`ApiKeyStore`], one function each, every one on a new, empty store. Each
//! takes the store twice, as the [`Database`] whose instances the rights name and as the key
//! store.

use chrono::{DateTime, Utc};

use super::database::create_all;
use super::{Failure, Outcome, ensure, ensure_eq};
use crate::db::{ApiKeyRecord, ApiKeyStore, InstanceRights, NewApiKey, PermissionMode};
use crate::{Database, DbError};

/// Rights on `instance`.
fn rights(instance: &str, can_infer: bool, can_start: bool, can_evict: bool) -> InstanceRights {
    InstanceRights { instance: instance.into(), can_infer, can_start, can_evict }
}

/// A per-instance key found by `lookup_id`, with `rights`.
fn new_key(lookup_id: &str, rights: Vec<InstanceRights>) -> NewApiKey {
    NewApiKey {
        name: format!("key {lookup_id}"),
        user_id: "conformance".into(),
        lookup_id: lookup_id.into(),
        sha256: format!("{lookup_id:0>64}"),
        permission_mode: PermissionMode::PerInstance,
        expires_at: None,
        rights,
    }
}

/// A time whole to the second (stores may keep no finer key times).
fn at_second(seconds: i64) -> Result<DateTime<Utc>, Failure> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| Failure(format!("the suite's own time {seconds} is invalid")))
}

async fn stored(keys: &dyn ApiKeyStore, id: i64) -> Result<ApiKeyRecord, Failure> {
    keys.get_api_key(id).await?.ok_or_else(|| Failure(format!("get_api_key({id}) is None")))
}

/// A created key is stored as given, with its token and no use yet, and `get_api_key` (by id)
/// and `find_api_key` (by lookup id) answer it; unknown ids and lookup ids answer `None`.
pub async fn a_created_key_is_found_by_id_and_lookup_id(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a"]).await?;
    let expires = at_second(4_000_000_000)?;
    let before = Utc::now().timestamp();
    let key = NewApiKey { expires_at: Some(expires), ..new_key("k1", vec![rights("a", true, false, true)]) };
    let created = keys.create_api_key(&key).await?;
    let after = Utc::now().timestamp();
    ensure_eq!((created.name.as_str(), created.user_id.as_str()), ("key k1", "conformance"), "name and owner");
    ensure_eq!(created.permission_mode, PermissionMode::PerInstance, "the permission mode");
    ensure_eq!(created.expires_at, Some(expires), "the expiry");
    ensure_eq!(created.lookup_id.as_deref(), Some("k1"), "the lookup id");
    ensure_eq!(created.sha256.as_deref(), Some(key.sha256.as_str()), "the SHA-256");
    ensure_eq!(created.legacy_hash, None, "the legacy hash of a key made here");
    ensure_eq!(created.last_used_at, None, "the last use of a new key");
    ensure_eq!(created.rights, key.rights, "the rights");
    ensure!(
        (before..=after + 1).contains(&created.created_at.timestamp()),
        "created_at {} is not now ({before}..={after})",
        created.created_at
    );
    ensure_eq!(keys.get_api_key(created.id).await?, Some(created.clone()), "get_api_key of the created id");
    ensure_eq!(keys.find_api_key("k1").await?, Some(created.clone()), "find_api_key of its lookup id");
    ensure_eq!(keys.find_api_key("k2").await?, None, "find_api_key of an unknown lookup id");
    ensure_eq!(keys.get_api_key(created.id + 1000).await?, None, "get_api_key of an unknown id");
    Ok(())
}

/// `list_api_keys` answers every key in id order, each as `get_api_key` answers it.
pub async fn keys_are_listed_by_id(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a"]).await?;
    let mut created = Vec::new();
    for (lookup, given) in
        [("k3", vec![rights("a", true, true, true)]), ("k1", vec![]), ("k2", vec![rights("a", false, true, false)])]
    {
        created.push(keys.create_api_key(&new_key(lookup, given)).await?);
    }
    let all_key = NewApiKey { permission_mode: PermissionMode::AllowAll, ..new_key("all", vec![]) };
    created.push(keys.create_api_key(&all_key).await?);
    ensure!(
        created.windows(2).all(|w| w[0].id < w[1].id),
        "key ids do not increase: {:?}",
        created.iter().map(|k| k.id).collect::<Vec<_>>()
    );
    ensure_eq!(keys.list_api_keys().await?, created, "list_api_keys");
    for key in &created {
        ensure_eq!(stored(keys, key.id).await?, *key, "get_api_key({}) against the listing", key.id);
    }
    Ok(())
}

/// Every combination of rights reads back as given, each key's ordered by instance name.
pub async fn rights_come_back_as_given_in_name_order(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["d", "b", "a", "c", "e"]).await?;
    let given = vec![
        rights("c", false, true, false),
        rights("a", true, false, false),
        rights("e", false, false, false),
        rights("d", false, false, true),
        rights("b", true, true, true),
    ];
    let mut wanted = given.clone();
    wanted.sort_by(|x, y| x.instance.cmp(&y.instance));
    let created = keys.create_api_key(&new_key("k", given)).await?;
    ensure_eq!(created.rights, wanted, "the created key's rights");
    ensure_eq!(stored(keys, created.id).await?.rights, wanted, "get_api_key's rights");
    let found = keys.find_api_key("k").await?.ok_or_else(|| Failure("find_api_key(\"k\") is None".into()))?;
    ensure_eq!(found.rights, wanted, "find_api_key's rights");
    let other = keys.create_api_key(&new_key("other", vec![rights("e", true, false, true)])).await?;
    ensure_eq!(
        stored(keys, other.id).await?.rights,
        [rights("e", true, false, true)],
        "another key's rights on the same instance"
    );
    ensure_eq!(stored(keys, created.id).await?.rights, wanted, "the first key's rights after another key's");
    Ok(())
}

/// A key whose rights name an instance that does not exist fails with [`DbError::NotFound`]
/// naming it, and nothing of it is stored.
pub async fn a_key_naming_an_unknown_instance_is_not_stored(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a"]).await?;
    let key = new_key("k", vec![rights("a", true, true, true), rights("ghost", true, false, false)]);
    match keys.create_api_key(&key).await {
        Err(DbError::NotFound(missing)) => ensure_eq!(missing, "ghost", "NotFound names the instance"),
        other => return Err(Failure(format!("a key naming an unknown instance answered {other:?}, want NotFound"))),
    }
    ensure!(keys.list_api_keys().await?.is_empty(), "a refused key is listed");
    ensure_eq!(keys.find_api_key("k").await?, None, "find_api_key of a refused key's lookup id");
    let again = keys.create_api_key(&new_key("k", vec![rights("a", true, true, true)])).await?;
    ensure_eq!(again.rights, [rights("a", true, true, true)], "a key with the refused one's lookup id");
    Ok(())
}

/// No two keys share a lookup id: creating one, or giving a key a token, with a lookup id
/// another key has fails with [`DbError::LookupIdTaken`] and changes nothing.
pub async fn lookup_ids_are_unique(_db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    let first = keys.create_api_key(&new_key("same", vec![])).await?;
    match keys.create_api_key(&new_key("same", vec![])).await {
        Err(DbError::LookupIdTaken(taken)) => ensure_eq!(taken, "same", "LookupIdTaken names the lookup id"),
        other => {
            return Err(Failure(format!(
                "a second key with lookup id \"same\" answered {other:?}, want LookupIdTaken"
            )));
        }
    }
    ensure_eq!(keys.list_api_keys().await?, std::slice::from_ref(&first), "keys after a refused create");
    let second = keys.create_api_key(&new_key("other", vec![])).await?;
    match keys.set_api_key_token(second.id, "same", &"f".repeat(64)).await {
        Err(DbError::LookupIdTaken(taken)) => ensure_eq!(taken, "same", "LookupIdTaken names the lookup id"),
        other => {
            return Err(Failure(format!(
                "a token with another key's lookup id answered {other:?}, want LookupIdTaken"
            )));
        }
    }
    ensure_eq!(stored(keys, second.id).await?, second, "the key refused a taken lookup id");
    ensure_eq!(keys.find_api_key("same").await?, Some(first), "the key that has the lookup id");
    Ok(())
}

/// `set_api_key_token` gives the key a new lookup id and SHA-256: the old lookup id finds
/// nothing any more (and is free for another key), the new one finds the same key.
pub async fn a_new_token_replaces_the_lookup_id(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a"]).await?;
    let key = keys.create_api_key(&new_key("old", vec![rights("a", true, false, false)])).await?;
    let sha256 = "f".repeat(64);
    keys.set_api_key_token(key.id, "new", &sha256).await?;
    ensure_eq!(keys.find_api_key("old").await?, None, "find_api_key of the replaced lookup id");
    let found = keys.find_api_key("new").await?.ok_or_else(|| Failure("find_api_key(\"new\") is None".into()))?;
    let wanted = ApiKeyRecord { lookup_id: Some("new".into()), sha256: Some(sha256), ..key };
    ensure_eq!(found, wanted, "the key after set_api_key_token");
    ensure_eq!(keys.list_api_keys().await?.len(), 1, "keys after set_api_key_token");
    let reused = keys.create_api_key(&new_key("old", vec![])).await?;
    ensure!(reused.id != found.id, "a key with the replaced lookup id got the first key's id");
    Ok(())
}

/// `set_api_key_token` of a key that does not exist fails with [`DbError::NotFound`] and
/// stores nothing.
pub async fn an_unknown_key_gets_no_token(_db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    let key = keys.create_api_key(&new_key("k", vec![])).await?;
    let ghost = key.id + 1000;
    match keys.set_api_key_token(ghost, "ghost", &"e".repeat(64)).await {
        Err(DbError::NotFound(_)) => {}
        other => {
            return Err(Failure(format!("set_api_key_token({ghost}) of no key answered {other:?}, want NotFound")));
        }
    }
    ensure_eq!(keys.find_api_key("ghost").await?, None, "find_api_key of the refused token's lookup id");
    ensure_eq!(keys.list_api_keys().await?, [key], "keys after a refused token");
    Ok(())
}

/// `touch_api_key` records the last use (to the second), a later one replaces it, and
/// touching a key that does not exist is no error.
pub async fn touch_records_the_last_use(_db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    let key = keys.create_api_key(&new_key("k", vec![])).await?;
    let (first, second) = (at_second(1_800_000_000)?, at_second(1_800_000_060)?);
    keys.touch_api_key(key.id, first).await?;
    ensure_eq!(stored(keys, key.id).await?.last_used_at, Some(first), "the last use after a touch");
    keys.touch_api_key(key.id, second).await?;
    ensure_eq!(
        stored(keys, key.id).await?,
        ApiKeyRecord { last_used_at: Some(second), ..key.clone() },
        "the key after a second touch"
    );
    keys.touch_api_key(key.id + 1000, second).await?;
    ensure_eq!(keys.list_api_keys().await?.len(), 1, "keys after touching an unknown one");
    Ok(())
}

/// `delete_api_key` removes the key with its lookup id and answers whether there was one;
/// other keys stay, and a later key never gets a deleted one's id.
pub async fn delete_removes_the_key(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a"]).await?;
    let doomed = keys.create_api_key(&new_key("k1", vec![rights("a", true, true, false)])).await?;
    let kept = keys.create_api_key(&new_key("k2", vec![rights("a", true, false, true)])).await?;
    ensure!(keys.delete_api_key(doomed.id).await?, "delete_api_key of an existing key answered false");
    ensure_eq!(keys.get_api_key(doomed.id).await?, None, "get_api_key of a deleted key");
    ensure_eq!(keys.find_api_key("k1").await?, None, "find_api_key of a deleted key's lookup id");
    ensure!(!keys.delete_api_key(doomed.id).await?, "a second delete_api_key answered true");
    ensure_eq!(keys.list_api_keys().await?, std::slice::from_ref(&kept), "keys after a delete");
    let again = keys.create_api_key(&new_key("k1", vec![])).await?;
    ensure!(again.id != doomed.id && again.id != kept.id, "a new key got id {}, which an earlier key had", again.id);
    ensure_eq!(again.rights, Vec::<InstanceRights>::new(), "a new key with a deleted one's lookup id has its rights");
    Ok(())
}

/// Deleting an instance removes every key's rights on it (the keys stay), and a new
/// instance of the same name does not bring them back.
pub async fn rights_go_with_their_instance(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    create_all(db, &["a", "b"]).await?;
    let key = keys
        .create_api_key(&new_key("k", vec![rights("a", true, true, false), rights("b", true, false, true)]))
        .await?;
    db.delete("b").await?;
    ensure_eq!(stored(keys, key.id).await?.rights, [rights("a", true, true, false)], "the rights after deleting \"b\"");
    create_all(db, &["b"]).await?;
    let found = keys.find_api_key("k").await?.ok_or_else(|| Failure("find_api_key(\"k\") is None".into()))?;
    ensure_eq!(found.rights, [rights("a", true, true, false)], "the rights after a new \"b\"");
    ensure_eq!(keys.list_api_keys().await?.len(), 1, "keys after deleting an instance they name");
    Ok(())
}

/// Keys made through the store have a token, so none is a legacy key.
pub async fn keys_made_here_are_not_legacy(_db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    let key = keys.create_api_key(&new_key("k1", vec![])).await?;
    keys.create_api_key(&new_key("k2", vec![])).await?;
    ensure!(keys.legacy_api_keys().await?.is_empty(), "keys made here are legacy keys");
    keys.set_api_key_token(key.id, "k3", &"d".repeat(64)).await?;
    ensure!(keys.legacy_api_keys().await?.is_empty(), "a key with a new token is a legacy key");
    Ok(())
}

/// After the database's `close` the key store's methods fail with [`DbError::Closed`].
pub async fn a_closed_store_says_so(db: &dyn Database, keys: &dyn ApiKeyStore) -> Outcome {
    let key = keys.create_api_key(&new_key("k", vec![])).await?;
    db.close().await;
    let closed = |what: &str, answer: Result<(), DbError>| match answer {
        Err(DbError::Closed) => Ok(()),
        other => Err(Failure(format!("{what} after close answered {other:?}, want Closed"))),
    };
    closed("list_api_keys", keys.list_api_keys().await.map(drop))?;
    closed("find_api_key", keys.find_api_key("k").await.map(drop))?;
    closed("create_api_key", keys.create_api_key(&new_key("k2", vec![])).await.map(drop))?;
    closed("delete_api_key", keys.delete_api_key(key.id).await.map(drop))?;
    Ok(())
}
