//! Whether a binary can run alone in a `FROM scratch` image, and finding
//! the static busybox the `busybox` template is built around.

use super::{io_err, ImageError};
use std::fs;
use std::path::{Path, PathBuf};

/// Finds a static busybox for the `busybox` template: `$BOTTLEBAR_BUSYBOX`, else
/// the usual Debian paths. `None` means: use [`BUSYBOX_FALLBACK_IMAGE`].
pub fn find_static_busybox() -> Option<PathBuf> {
    let candidates = std::env::var_os("BOTTLEBAR_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/bin/busybox", "/usr/bin/busybox"].map(PathBuf::from));
    candidates
        .into_iter()
        .find(|p| check_static_linux_elf(p).is_ok())
}

/// A binary can run alone in a `FROM scratch` image only if it is a Linux ELF
/// executable with no program interpreter (i.e. statically linked).
pub fn check_static_linux_elf(path: &Path) -> Result<(), ImageError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let not = |why: &str| ImageError::NotStatic {
        path: path.to_path_buf(),
        why: why.into(),
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err(not("not a Linux (ELF) executable"));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(not("not a 64-bit little-endian ELF file"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > bytes.len() {
            return Err(not("truncated ELF program headers"));
        }
        if u32_at(off) == PT_INTERP {
            return Err(not(
                "dynamically linked (it needs a program interpreter); build it statically",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_are_refused() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        let err = check_static_linux_elf(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("script");
        fs::write(&txt, "#!/bin/sh\necho hi\n").unwrap();
        assert!(check_static_linux_elf(&txt)
            .unwrap_err()
            .to_string()
            .contains("not a Linux"));
    }
}
