//! The floor the sidecar is measured against (issue 20): the least a program can do to
//! pull the same summaries — a reqwest GET of each, every interval, and a typed serde
//! decode — on a current-thread runtime, as a bare client would be written. The bench
//! runs it as a child process (`peerscope-lab floor`) against the same simulated peers,
//! and counts both programs' allocations the same way (see [`AllocationCounter`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;

use crate::{io, RunError};

/// What the floor decodes: the summary's fields, typed (unknown fields ignored).
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read by serde, which is the work measured
struct Summary {
    node_id: String,
    timestamp: f64,
    state_root: Option<String>,
    state_height: Option<u64>,
    metrics: Metrics,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Metrics {
    g_star: f64,
    peer_quality: Option<f64>,
    stability_margin: Option<f64>,
    hopf_distance: Option<f64>,
    spectral_radius: Option<f64>,
    gamma: Option<f64>,
    g_components: Option<std::collections::HashMap<String, f64>>,
}

/// Pulls every URL each `interval` until killed; prints the pulls completed so far
/// (answered and decoded or not) after each round, one number a line.
pub fn run(urls: Vec<String>, interval: Duration, timeout: Duration) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the runtime"))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(crate::http("cannot build the HTTP client"))?;
        let mut ticker = tokio::time::interval(interval);
        let mut pulls = 0usize;
        loop {
            ticker.tick().await;
            let rounds = join_all(urls.iter().map(|url| pull(&client, url))).await;
            pulls += rounds.len();
            println!("{pulls}");
        }
    })
}

async fn pull(client: &reqwest::Client, url: &str) -> Option<Summary> {
    let body = client.get(url).send().await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// Counts a child process's heap allocations (malloc, calloc, realloc and the aligned
/// ones) with a small `LD_PRELOAD` library built here by the system C compiler: the same
/// count for the sidecar and the floor, without changing either program. The count lives
/// in a shared 8-byte file that the bench reads while the child runs.
pub struct AllocationCounter {
    library: PathBuf,
}

const COUNTER_SOURCE: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static unsigned long before_init;
static unsigned long *counter = &before_init;
__attribute__((constructor)) static void attach(void) {
    const char *path = getenv("PEERSCOPE_ALLOCATION_COUNT");
    if (!path) return;
    int fd = open(path, O_RDWR);
    if (fd < 0) return;
    void *shared = mmap(0, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared != MAP_FAILED) counter = shared;
}
static inline void count(void) { __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    count();
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
"#;

impl AllocationCounter {
    /// Builds the library in `directory`; `None` (said on stderr) without a C compiler.
    pub fn build(directory: &Path) -> Option<Self> {
        let source = directory.join("count_allocations.c");
        let library = directory.join("libcount_allocations.so");
        std::fs::write(&source, COUNTER_SOURCE).ok()?;
        let built = std::process::Command::new("cc")
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .status();
        match built {
            Ok(status) if status.success() => Some(AllocationCounter { library }),
            other => {
                eprintln!("allocations are not counted: cannot build the counting library with cc ({other:?})");
                None
            }
        }
    }

    /// Sets `command` up to count into a new file `count_file`.
    pub fn attach(
        &self,
        command: &mut tokio::process::Command,
        count_file: &Path,
    ) -> Result<(), RunError> {
        std::fs::write(count_file, [0u8; 8]).map_err(io("cannot create the count file"))?;
        command
            .env("LD_PRELOAD", &self.library)
            .env("PEERSCOPE_ALLOCATION_COUNT", count_file);
        Ok(())
    }
}

/// Allocations counted so far in `count_file`.
pub fn allocations(count_file: &Path) -> Option<u64> {
    let bytes = std::fs::read(count_file).ok()?;
    Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
}
