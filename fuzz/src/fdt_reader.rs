//! A small reader of the flattened device trees the loader writes, for the fuzz
//! targets' checks: every property with the path of its node, read without trusting
//! the blob (a malformed tree is an `Err` naming what is wrong, never a panic).

/// One property: the path of its node (`/chosen`), its name and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub node: String,
    pub name: String,
    pub value: Vec<u8>,
}

fn be32(blob: &[u8], at: usize) -> Result<u32, String> {
    blob.get(at..at.checked_add(4).ok_or("offset overflow")?)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .ok_or_else(|| format!("a word at {at:#x} lies past the end ({:#x})", blob.len()))
}

/// A NUL-terminated string at `at`, and the offset after its NUL.
fn string_at(blob: &[u8], at: usize) -> Result<(String, usize), String> {
    let rest = blob.get(at..).ok_or("a string past the end")?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or("a string without its NUL")?;
    let text = std::str::from_utf8(&rest[..len]).map_err(|_| "a name that is not UTF-8")?;
    Ok((text.to_string(), at + len + 1))
}

/// Every property of the tree, in order. Checks the header against the blob: magic,
/// total size, the blocks' offsets and sizes, and that the structure block is well
/// nested and ends with `FDT_END`.
pub fn properties(blob: &[u8]) -> Result<Vec<Property>, String> {
    if be32(blob, 0)? != 0xd00d_feed {
        return Err("no FDT magic".into());
    }
    let field = |n: usize| be32(blob, 4 * n).map(|v| v as usize);
    let (total, structure, strings, reservations) = (field(1)?, field(2)?, field(3)?, field(4)?);
    let (strings_size, structure_size) = (field(8)?, field(9)?);
    if total != blob.len() {
        return Err(format!("totalsize {total:#x}, blob {:#x}", blob.len()));
    }
    if reservations < 40 || structure < reservations + 16 {
        return Err("the reservation block overlaps the header or the structure".into());
    }
    if structure + structure_size != strings || strings + strings_size != total {
        return Err("the blocks do not follow each other to the end".into());
    }
    let strings_block = &blob[strings..];
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut at = structure;
    loop {
        if at >= strings {
            return Err("the structure block runs into the strings".into());
        }
        match be32(blob, at)? {
            1 => {
                let (name, next) = string_at(blob, at + 4)?;
                path.push(name);
                at = next.next_multiple_of(4);
            }
            2 => {
                path.pop().ok_or("FDT_END_NODE without a node")?;
                at += 4;
            }
            3 => {
                let len = be32(blob, at + 4)? as usize;
                let name_offset = be32(blob, at + 8)? as usize;
                let value = blob
                    .get(at + 12..at + 12 + len)
                    .ok_or("a property value past the end")?
                    .to_vec();
                let (name, _) = string_at(strings_block, name_offset)?;
                let node = if path.len() <= 1 {
                    "/".to_string()
                } else {
                    path[1..].iter().map(|p| format!("/{p}")).collect()
                };
                out.push(Property { node, name, value });
                at = (at + 12 + len).next_multiple_of(4);
            }
            9 => {
                if !path.is_empty() {
                    return Err("FDT_END inside a node".into());
                }
                if at + 4 != strings {
                    return Err("bytes between FDT_END and the strings".into());
                }
                return Ok(out);
            }
            4 => at += 4,
            token => return Err(format!("unknown token {token} at {at:#x}")),
        }
    }
}

/// The value of property `name` of node `node`, if there is exactly one.
pub fn property<'p>(properties: &'p [Property], node: &str, name: &str) -> Option<&'p [u8]> {
    let mut found = properties
        .iter()
        .filter(|p| p.node == node && p.name == name);
    let first = found.next()?;
    found.next().is_none().then_some(first.value.as_slice())
}
