//! A picture of memory: an arena's (or the global allocator's) chunks as
//! one strip each, coloured by what their bytes hold.
//!
//! [`Arena::memory_map`](crate::Arena::memory_map),
//! [`SharedArena::memory_map`](crate::SharedArena::memory_map) and
//! [`GlobalArena::memory_map`](crate::GlobalArena::memory_map) take the
//! numbers; [`svg`] draws them:
//!
//! ```
//! use fiberalloc::{policy::Safe, report, Arena};
//! let arena = Arena::with_policy(Safe);
//! for i in 0..1000u64 {
//!     arena.alloc(i);
//! }
//! let map = arena.memory_map();
//! assert_eq!(map.chunks.len(), arena.stats().chunk_count);
//! let picture = report::svg(&map);
//! assert!(picture.starts_with("<svg"));
//! // std::fs::write("arena.svg", picture)?;
//! ```
//!
//! Every strip is drawn to the same width whatever the chunk's size (the
//! size is written beside it), left to right: the guard page below (if
//! any), the chunk header, the bytes up to the cursor split into live and
//! padding, the free space, and the guard page above.

use core::fmt::Write;

/// What a chunk is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkState {
    /// The chunk the arena (or the calling thread) is bumping in.
    Current,
    /// A chunk the arena moved past; its blocks are still live.
    Full,
    /// A chunk kept for reuse, holding nothing.
    Spare,
    /// A free chunk whose pages went back to the OS (`GlobalArena`).
    Decommitted,
}

impl ChunkState {
    fn name(self) -> &'static str {
        match self {
            ChunkState::Current => "current",
            ChunkState::Full => "full",
            ChunkState::Spare => "spare",
            ChunkState::Decommitted => "decommitted",
        }
    }
}

/// One chunk's bytes, by what they hold. `header + live + padding + free`
/// is the chunk's usable size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkUsage {
    /// The chunk's address.
    pub addr: usize,
    /// What it is doing.
    pub state: ChunkState,
    /// The chunk header.
    pub header: usize,
    /// Bytes of live blocks.
    pub live: usize,
    /// Bytes used but holding no live block: alignment, rounding, block
    /// headers and canaries, freed blocks the cursor could not take back.
    pub padding: usize,
    /// Bytes not used yet.
    pub free: usize,
    /// Guard pages around the chunk (not part of its usable size).
    pub guard: usize,
}

impl ChunkUsage {
    /// The chunk's usable size: header, live, padding and free bytes.
    pub fn size(&self) -> usize {
        self.header + self.live + self.padding + self.free
    }
}

/// The chunks of one arena or allocator, as [`svg`] draws them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// What the map is of (the picture's title).
    pub title: String,
    /// One entry per chunk.
    pub chunks: Vec<ChunkUsage>,
    /// A note printed under the strips (what the map leaves out), if any.
    pub note: Option<String>,
}

const LIVE: &str = "#2e7d32";
const PADDING: &str = "#f9a825";
const FREE: &str = "#e0e0e0";
const HEADER: &str = "#5c6bc0";
const GUARD: &str = "#c62828";

const STRIP_X: usize = 20;
const STRIP_W: usize = 560;
const STRIP_H: usize = 18;
const ROW: usize = 26;
const TOP: usize = 64;

/// Draws `map` as an SVG document: a title, a legend, and one strip per
/// chunk (`<g class="chunk">`, in the map's order) with its address, size
/// and byte counts beside it.
pub fn svg(map: &MemoryMap) -> String {
    let labels: Vec<String> = map.chunks.iter().map(label).collect();
    let rows = map.chunks.len() + 1 + map.note.is_some() as usize;
    let height = TOP + rows * ROW + 10;
    // Monospace at 12 px: about 7.3 px a character.
    let widest = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let note = map.note.as_ref().map_or(0, |n| n.len());
    let width = (STRIP_X + STRIP_W + 10 + widest * 73 / 10).max(STRIP_X + note * 73 / 10) + 20;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let (live, padding, free, total) = map
        .chunks
        .iter()
        .fold((0, 0, 0, 0), |(l, p, f, t), c| (l + c.live, p + c.padding, f + c.free, t + c.size()));
    let _ = writeln!(
        out,
        r#"<text x="{STRIP_X}" y="20" font-size="14" font-weight="bold">{}: {} chunks, {} mapped; live {}, padding {}, free {}</text>"#,
        escape(&map.title),
        map.chunks.len(),
        Bytes(total),
        Bytes(live),
        Bytes(padding),
        Bytes(free)
    );
    let mut x = STRIP_X;
    for (name, colour) in
        [("live", LIVE), ("padding", PADDING), ("free", FREE), ("header", HEADER), ("guard", GUARD)]
    {
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="32" width="12" height="12" fill="{colour}"/><text x="{}" y="42">{name}</text>"#,
            x + 16
        );
        x += 24 + 8 * name.len() + 12;
    }
    for (i, c) in map.chunks.iter().enumerate() {
        let y = TOP + i * ROW;
        let _ =
            writeln!(out, r#"<g class="chunk" data-addr="{:#x}" data-state="{}">"#, c.addr, c.state.name());
        let half = c.guard / 2;
        let parts = [
            (half, GUARD),
            (c.header, HEADER),
            (c.live, LIVE),
            (c.padding, PADDING),
            (c.free, FREE),
            (c.guard - half, GUARD),
        ];
        let whole: usize = parts.iter().map(|p| p.0).sum::<usize>().max(1);
        // Widths in pixels, each non-empty part at least one, the last
        // one taking up the rounding so the strip is exactly STRIP_W wide.
        let mut at = STRIP_X;
        let mut left = STRIP_W;
        let last = parts.iter().rposition(|p| p.0 > 0).unwrap_or(0);
        for (k, &(bytes, colour)) in parts.iter().enumerate() {
            if bytes == 0 {
                continue;
            }
            let w = if k == last { left } else { (bytes * STRIP_W / whole).max(1).min(left) };
            if w == 0 {
                continue;
            }
            let _ =
                writeln!(out, r#"  <rect x="{at}" y="{y}" width="{w}" height="{STRIP_H}" fill="{colour}"/>"#);
            at += w;
            left -= w;
        }
        let _ =
            writeln!(out, r#"  <text x="{}" y="{}">{}</text>"#, STRIP_X + STRIP_W + 10, y + 13, labels[i]);
        let _ = writeln!(out, "</g>");
    }
    if let Some(note) = &map.note {
        let y = TOP + map.chunks.len() * ROW + 13;
        let _ = writeln!(out, r#"<text x="{STRIP_X}" y="{y}" font-style="italic">{}</text>"#, escape(note));
    }
    out.push_str("</svg>\n");
    out
}

/// The numbers written beside a chunk's strip (no characters to escape).
fn label(c: &ChunkUsage) -> String {
    let guard = if c.guard > 0 { format!(", guard {}", Bytes(c.guard)) } else { String::new() };
    format!(
        "{:#x} {} {}: live {}, padding {}, free {}{guard}",
        c.addr,
        c.state.name(),
        Bytes(c.size()),
        Bytes(c.live),
        Bytes(c.padding),
        Bytes(c.free)
    )
}

/// Escapes text for an XML text node or attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes with a binary unit, as the stats tables write them.
struct Bytes(usize);

impl core::fmt::Display for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        crate::stats::fmt_bytes(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(live: usize, padding: usize, free: usize, guard: usize) -> ChunkUsage {
        ChunkUsage { addr: 0x1000, state: ChunkState::Full, header: 64, live, padding, free, guard }
    }

    #[test]
    fn strips_fill_their_width_and_escape_the_title() {
        let map = MemoryMap {
            title: "Arena<Safe> & co".into(),
            chunks: vec![chunk(1000, 24, 15_000, 8192), chunk(0, 0, 65_472, 0), chunk(1, 0, 0, 0)],
            note: Some("a <note>".into()),
        };
        let svg = svg(&map);
        assert!(svg.contains("Arena&lt;Safe&gt; &amp; co"), "{svg}");
        assert!(svg.contains("a &lt;note&gt;"));
        assert_eq!(svg.matches(r#"<g class="chunk""#).count(), 3);
        // Each strip's rectangles add up to STRIP_W.
        for strip in svg.split(r#"<g class="chunk""#).skip(1) {
            let strip = strip.split("</g>").next().unwrap();
            let total: usize = strip
                .split(r#"width=""#)
                .skip(1)
                .map(|w| w.split('"').next().unwrap().parse::<usize>().unwrap())
                .sum();
            assert_eq!(total, STRIP_W, "{strip}");
        }
    }
}
