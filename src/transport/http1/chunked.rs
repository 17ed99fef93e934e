//! The chunked transfer coding (RFC 9112 7.1), decoded as it arrives: any
//! split of the input, any size of output; extensions and trailers are read
//! and dropped, each line at most 4 KiB.

use super::Malformed;

/// The longest chunk-size line (size and extensions) or trailer line read.
const MAX_CHUNK_LINE: usize = 4096;

/// The chunked transfer coding, decoded as it arrives.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    /// Bytes of the current size or trailer line so far.
    line_bytes: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk's size (hexadecimal digits).
    #[default]
    SizeStart,
    Size(u64),
    /// After the size: extensions, ignored, up to the line's end.
    Extension(u64),
    /// The size line's `\r` came: `\n` next.
    SizeLineEnd(u64),
    /// This many bytes of chunk data are left.
    Data(u64),
    /// After the data: `\r\n`.
    DataEnd {
        seen_cr: bool,
    },
    /// After the last chunk: trailer lines until an empty one.
    Trailer {
        empty_so_far: bool,
        seen_cr: bool,
    },
    Done,
}

impl Chunked {
    /// The last chunk and its trailers have been read.
    pub(super) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Takes bytes from `input`, writes chunk data to `output`: (used, written).
    pub(super) fn decode(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), Malformed> {
        let (mut used, mut written) = (0, 0);
        while used < input.len() {
            if let ChunkState::Data(left) = self.state {
                if written == output.len() {
                    break;
                }
                let take = (input.len() - used)
                    .min(output.len() - written)
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                output[written..written + take].copy_from_slice(&input[used..used + take]);
                (used, written) = (used + take, written + take);
                self.state = if left == take as u64 {
                    ChunkState::DataEnd { seen_cr: false }
                } else {
                    ChunkState::Data(left - take as u64)
                };
                continue;
            }
            if self.state == ChunkState::Done {
                break;
            }
            self.step(input[used])?;
            used += 1;
        }
        Ok((used, written))
    }

    /// One byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), Malformed> {
        let bad = |what| Err(Malformed::Body(what));
        self.line_bytes += 1;
        if self.line_bytes > MAX_CHUNK_LINE {
            return bad("a chunk-size or trailer line over 4 KiB");
        }
        self.state = match std::mem::take(&mut self.state) {
            ChunkState::SizeStart => match hex_digit(byte) {
                Some(digit) => ChunkState::Size(u64::from(digit)),
                None => return bad("a chunk size that is not hexadecimal"),
            },
            ChunkState::Size(size) => match (hex_digit(byte), byte) {
                (Some(digit), _) => {
                    if size >> 60 != 0 {
                        return bad("a chunk size over 2^64");
                    }
                    ChunkState::Size(size << 4 | u64::from(digit))
                }
                (None, b';' | b' ' | b'\t') => ChunkState::Extension(size),
                (None, b'\r') => ChunkState::SizeLineEnd(size),
                (None, b'\n') => self.after_size_line(size),
                _ => return bad("a chunk size that is not hexadecimal"),
            },
            ChunkState::Extension(size) => match byte {
                b'\r' => ChunkState::SizeLineEnd(size),
                b'\n' => self.after_size_line(size),
                _ => ChunkState::Extension(size),
            },
            ChunkState::SizeLineEnd(size) => match byte {
                b'\n' => self.after_size_line(size),
                _ => return bad("a chunk-size line not ended by CRLF"),
            },
            ChunkState::DataEnd { seen_cr } => match (seen_cr, byte) {
                (false, b'\r') => ChunkState::DataEnd { seen_cr: true },
                (_, b'\n') => {
                    self.line_bytes = 0;
                    ChunkState::SizeStart
                }
                _ => return bad("chunk data longer than its size"),
            },
            ChunkState::Trailer {
                empty_so_far,
                seen_cr,
            } => match byte {
                b'\r' if !seen_cr => ChunkState::Trailer {
                    empty_so_far,
                    seen_cr: true,
                },
                b'\n' if empty_so_far => ChunkState::Done,
                b'\n' => {
                    self.line_bytes = 0;
                    ChunkState::Trailer {
                        empty_so_far: true,
                        seen_cr: false,
                    }
                }
                _ if seen_cr => return bad("a trailer line not ended by CRLF"),
                _ => ChunkState::Trailer {
                    empty_so_far: false,
                    seen_cr: false,
                },
            },
            ChunkState::Data(_) | ChunkState::Done => unreachable!("handled by decode"),
        };
        Ok(())
    }

    fn after_size_line(&mut self, size: u64) -> ChunkState {
        self.line_bytes = 0;
        if size == 0 {
            ChunkState::Trailer {
                empty_so_far: true,
                seen_cr: false,
            }
        } else {
            ChunkState::Data(size)
        }
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}
