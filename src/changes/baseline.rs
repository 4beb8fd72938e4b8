//! Where a store's last successful upload is remembered (docs/changes.md): a file per store under
//! `known/` in the state directory, or, with `state_url`, the `rrfeed_known` table of the shared
//! PostgreSQL database (in parts of 1 MiB, replaced in one transaction), so that any host compares
//! with the upload any other host made. Written only after the server confirmed `endtransaction`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use super::known::{Header, KnownReader};
use crate::state::State;
use crate::state::postgres::Shared;

/// The bytes of one row of `rrfeed_known`.
const PART: usize = 1 << 20;

/// A remembered upload, checked and ready to read from its first customer.
pub struct Baseline {
    pub reader: KnownReader<BufReader<File>>,
    /// The copy downloaded from PostgreSQL, removed when this is dropped.
    _download: Option<TempPath>,
}

/// The file of `store_id` in the state directory.
pub fn file_of(state_dir: &Path, store_id: &str) -> PathBuf {
    state_dir
        .join("known")
        .join(format!("{}.known", crate::lock::safe_name(store_id)))
}

/// The store's remembered upload, if there is one; a PostgreSQL copy is downloaded into `scratch`.
///
/// Fails when it cannot be read, is damaged, or belongs to another store.
pub fn load(state: &State, store_id: &str, scratch: &Path) -> Result<Option<Baseline>, String> {
    let (file, download) = match &state.postgres {
        None => {
            let path = file_of(&state.dir, store_id);
            match File::open(&path) {
                Ok(file) => (file, None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Some(target) => {
            let db = Shared::connect(target)?;
            match download(&db, store_id, scratch)? {
                Some((file, path)) => (file, Some(path)),
                None => return Ok(None),
            }
        }
    };
    check(file, store_id)
        .map(|reader| {
            Some(Baseline {
                reader,
                _download: download,
            })
        })
        .map_err(|e| format!("the remembered upload of store {store_id} is damaged: {e}"))
}

/// Reads the whole file once (format, order, owner), then rewinds it.
fn check(mut file: File, store_id: &str) -> io::Result<KnownReader<BufReader<File>>> {
    let mut reader = KnownReader::open(BufReader::new(file.try_clone()?))?;
    if reader.header().store_id != store_id {
        return Err(io::Error::other(format!(
            "it is store {}'s",
            reader.header().store_id
        )));
    }
    reader.check_rest()?;
    file.seek(SeekFrom::Start(0))?;
    KnownReader::open(BufReader::with_capacity(1 << 16, file))
}

/// What the names of scratch files start with (`prune` removes those a crashed run left).
pub const SCRATCH_PREFIX: &str = ".known-";

/// A new scratch file in `scratch` (made if missing), removed when its path is dropped.
///
/// Fails when the directory or the file cannot be created.
pub fn scratch_file(scratch: &Path) -> io::Result<(File, TempPath)> {
    std::fs::create_dir_all(scratch)?;
    Ok(tempfile::Builder::new()
        .prefix(SCRATCH_PREFIX)
        .tempfile_in(scratch)?
        .into_parts())
}

/// Copies the store's parts into a temporary file, in one snapshot of the table.
fn download(
    db: &Shared,
    store_id: &str,
    scratch: &Path,
) -> Result<Option<(File, TempPath)>, String> {
    let (mut file, path) = scratch_file(scratch)
        .map_err(|e| format!("cannot create a file in {}: {e}", scratch.display()))?;
    let mut io_error = None;
    let parts = db.with(|client| {
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let mut parts = 0i32;
        loop {
            let row = tx.query_opt(
                "SELECT data FROM rrfeed_known WHERE store_id = $1 AND part = $2",
                &[&store_id, &parts],
            )?;
            let Some(row) = row else { break };
            let data: &[u8] = row.get(0);
            if let Err(e) = file.write_all(data) {
                io_error = Some(e);
                break;
            }
            parts += 1;
        }
        tx.commit()?;
        Ok(parts)
    })?;
    if let Some(e) = io_error {
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    if parts == 0 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some((file, path)))
}

/// Makes `pending` (written by the comparison) the store's remembered upload; `synced` when its
/// bytes are already on disk.
///
/// Fails when it cannot be moved into place or stored in PostgreSQL.
pub fn remember(
    state: &State,
    store_id: &str,
    pending: TempPath,
    synced: bool,
) -> Result<(), String> {
    match &state.postgres {
        None => {
            let path = file_of(&state.dir, store_id);
            let dir = path.parent().expect("the file is in known/");
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            if !synced {
                File::open(&pending)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", pending.display()))?;
            }
            pending
                .persist(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        }
        Some(target) => {
            let mut file = File::open(&pending)
                .map_err(|e| format!("cannot read {}: {e}", pending.display()))?;
            let db = Shared::connect(target)?;
            upload(&db, store_id, &mut file)
        }
    }
}

/// Replaces the store's parts in one transaction, one part in memory at a time.
fn upload(db: &Shared, store_id: &str, file: &mut File) -> Result<(), String> {
    let mut io_error = None;
    db.with(|client| {
        let mut tx = client.transaction()?;
        tx.execute("DELETE FROM rrfeed_known WHERE store_id = $1", &[&store_id])?;
        let mut buf = Vec::with_capacity(PART);
        for part in 0i32.. {
            buf.clear();
            match Read::take(&mut *file, PART as u64).read_to_end(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    io_error = Some(e);
                    return tx.rollback();
                }
            }
            tx.execute(
                "INSERT INTO rrfeed_known (store_id, part, data) VALUES ($1, $2, $3)",
                &[&store_id, &part, &buf.as_slice()],
            )?;
        }
        tx.commit()
    })?;
    match io_error {
        Some(e) => Err(format!("cannot read the new remembered upload: {e}")),
        None => Ok(()),
    }
}

/// The header a run's new remembered state starts with.
pub fn header(store_id: &str, run: Option<i64>) -> Header {
    Header {
        store_id: store_id.to_owned(),
        run,
    }
}
