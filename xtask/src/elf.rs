//! A tiny reader for little-endian ELF files (32- and 64-bit), just enough to prove that a
//! binary is static and self-contained.

pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const EM_RISCV: u16 = 243;

pub const ET_EXEC: u16 = 2;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NEEDED: u64 = 1;
const SHN_UNDEF: u16 = 0;

#[derive(Debug)]
pub struct Elf {
    pub e_type: u16,
    pub machine: u16,
    pub entry: u64,
    pub has_interp: bool,
    pub has_dynamic: bool,
    /// Libraries named by `DT_NEEDED`.
    pub needed: Vec<String>,
    /// Undefined symbols in `.symtab`/`.dynsym`. A weak one links "fine" to address 0.
    pub undefined: Vec<String>,
    /// False for a stripped file: then `undefined` proves nothing.
    pub has_symtab: bool,
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    entsize: usize,
}

/// Bounds-checked little-endian reads; `wide` selects ELFCLASS64 field sizes.
struct Reader<'a> {
    data: &'a [u8],
    wide: bool,
}

impl Reader<'_> {
    fn bytes(&self, at: usize, n: usize) -> Result<&[u8], String> {
        at.checked_add(n)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| format!("truncated ELF: {n} bytes at {at:#x}"))
    }
    fn u8(&self, at: usize) -> Result<u8, String> {
        Ok(self.bytes(at, 1)?[0])
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.bytes(at, 2)?.try_into().unwrap()))
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes(at, 4)?.try_into().unwrap()))
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes(at, 8)?.try_into().unwrap()))
    }
    /// An address/offset/size field: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, at: usize) -> Result<u64, String> {
        if self.wide {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
    fn usize(&self, at: usize) -> Result<usize, String> {
        usize::try_from(self.word(at)?).map_err(|e| e.to_string())
    }
    /// A NUL-terminated string at `at` inside string table `table`.
    fn str(&self, table: &Section, at: usize) -> String {
        let Some(bytes) = self.data.get(table.offset..table.offset + table.size) else {
            return String::from("?");
        };
        let tail = bytes.get(at..).unwrap_or_default();
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        String::from_utf8_lossy(&tail[..end]).into_owned()
    }
}

pub fn parse(data: &[u8]) -> Result<Elf, String> {
    if data.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    let wide = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    if data.get(5) != Some(&1) {
        return Err("not little-endian".into());
    }
    let r = Reader { data, wide };
    // Header field offsets differ between the classes from e_entry on.
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = if wide {
        (32, 40, 54, 56, 58, 60)
    } else {
        (28, 32, 42, 44, 46, 48)
    };
    let e_type = r.u16(16)?;
    let machine = r.u16(18)?;
    let entry = r.word(24)?;
    let (phoff, phentsize, phnum) = (r.usize(phoff)?, r.u16(phentsize)? as usize, r.u16(phnum)? as usize);
    let (shoff, shentsize, shnum) = (r.usize(shoff)?, r.u16(shentsize)? as usize, r.u16(shnum)? as usize);

    let mut has_interp = false;
    let mut has_dynamic = false;
    for i in 0..phnum {
        match r.u32(phoff + i * phentsize)? {
            PT_INTERP => has_interp = true,
            PT_DYNAMIC => has_dynamic = true,
            _ => {}
        }
    }

    let mut sections = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let at = shoff + i * shentsize;
        // sh_type at 4; then the offset/size/link/entsize fields, whose places depend on class.
        let (off, size, link, entsize) = if wide { (24, 32, 40, 56) } else { (16, 20, 24, 36) };
        sections.push(Section {
            kind: r.u32(at + 4)?,
            offset: r.usize(at + off)?,
            size: r.usize(at + size)?,
            link: r.u32(at + link)? as usize,
            entsize: r.usize(at + entsize)?,
        });
    }

    let mut elf = Elf {
        e_type,
        machine,
        entry,
        has_interp,
        has_dynamic,
        needed: Vec::new(),
        undefined: Vec::new(),
        has_symtab: false,
    };
    for s in &sections {
        let strtab = sections.get(s.link);
        match (s.kind, strtab) {
            (SHT_SYMTAB | SHT_DYNSYM, Some(strtab)) if s.entsize > 0 => {
                elf.has_symtab |= s.kind == SHT_SYMTAB;
                // Entry 0 is the reserved null symbol.
                for i in 1..s.size / s.entsize {
                    let at = s.offset + i * s.entsize;
                    let (shndx, info) = if wide {
                        (r.u16(at + 6)?, r.u8(at + 4)?)
                    } else {
                        (r.u16(at + 14)?, r.u8(at + 12)?)
                    };
                    let name = r.str(strtab, r.u32(at)? as usize);
                    if shndx == SHN_UNDEF && !name.is_empty() {
                        let weak = if info >> 4 == 2 { " (weak)" } else { "" };
                        elf.undefined.push(format!("{name}{weak}"));
                    }
                }
            }
            (SHT_DYNAMIC, Some(strtab)) => {
                let step = if wide { 16 } else { 8 };
                for i in 0..s.size / step {
                    let at = s.offset + i * step;
                    if r.word(at)? == DT_NEEDED {
                        let val = r.usize(at + step / 2)?;
                        elf.needed.push(r.str(strtab, val));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(elf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_shows_everything_the_check_rejects() {
        // This test binary is an ordinary glibc program: interpreter, dynamic section, libc.
        let e = parse(&std::fs::read(std::env::current_exe().unwrap()).unwrap()).unwrap();
        assert_eq!(e.machine, EM_X86_64);
        assert!(e.has_interp && e.has_dynamic && e.has_symtab);
        assert!(e.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", e.needed);
        assert!(!e.undefined.is_empty());
    }

    #[test]
    fn a_bare_elf32_header() {
        let mut h = vec![0u8; 52];
        h[..6].copy_from_slice(b"\x7fELF\x01\x01");
        h[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        h[18..20].copy_from_slice(&EM_386.to_le_bytes());
        h[24..28].copy_from_slice(&0x0804_9000u32.to_le_bytes());
        let e = parse(&h).unwrap();
        assert_eq!((e.e_type, e.machine, e.entry), (ET_EXEC, EM_386, 0x0804_9000));
        assert!(!e.has_interp && !e.has_dynamic && !e.has_symtab);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\x7fELF\x02\x01").is_err());
        let mut h = vec![0u8; 64];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff far away
        h[56] = 1; // e_phnum
        assert!(parse(&h).is_err());
    }
}
