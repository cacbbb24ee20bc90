//! DICOM RLE Lossless encoder (PS3.5 Annex G): one fragment per frame, a 64-byte header, one
//! PackBits segment per byte plane (most significant plane first), each row encoded separately.

/// PackBits-encode one row into `out`.
fn pack_bits(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let mut i = 0;
    while i < n {
        // Length of the run of equal bytes starting at i (max 128).
        let mut run = 1;
        while i + run < n && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            // Replicate run: -(run-1) as i8, then the byte.
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
        } else {
            // Literal run: up to 128 bytes, stopping before a run of 2 or more equal bytes.
            let start = i;
            let mut len = 0;
            while i < n && len < 128 {
                if i + 1 < n && row[i] == row[i + 1] {
                    break;
                }
                i += 1;
                len += 1;
            }
            if len == 0 {
                continue;
            }
            out.push((len - 1) as u8);
            out.extend_from_slice(&row[start..start + len]);
        }
    }
}

/// Encode one frame of `rows x cols` samples of `bytes_per_sample` (1 or 2) bytes, given as
/// little-endian bytes, into an RLE fragment (even length).
pub(crate) fn encode_frame(le: &[u8], rows: usize, cols: usize, bytes_per_sample: usize) -> Vec<u8> {
    let segments = bytes_per_sample;
    let mut body = Vec::with_capacity(le.len() / 2 + 64);
    let mut offsets = [0u32; 15];
    let mut plane_row = vec![0u8; cols];
    for (s, offset) in offsets.iter_mut().enumerate().take(segments) {
        *offset = 64 + body.len() as u32;
        // Segment s holds byte (bytes_per_sample - 1 - s) of each sample: MSB first.
        let byte = bytes_per_sample - 1 - s;
        for r in 0..rows {
            for (c, v) in plane_row.iter_mut().enumerate() {
                *v = le[(r * cols + c) * bytes_per_sample + byte];
            }
            pack_bits(&plane_row, &mut body);
        }
        if body.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = Vec::with_capacity(64 + body.len());
    out.extend_from_slice(&(segments as u32).to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(mut src: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < n {
            let h = src[0] as i8;
            src = &src[1..];
            if h >= 0 {
                let k = h as usize + 1;
                out.extend_from_slice(&src[..k]);
                src = &src[k..];
            } else if h != -128 {
                let k = (1 - h as isize) as usize;
                out.extend(std::iter::repeat_n(src[0], k));
                src = &src[1..];
            }
        }
        out
    }

    #[test]
    fn packbits_round_trip_on_runs_and_literals() {
        let mut row: Vec<u8> = (0..300)
            .map(|i| {
                if (100..250).contains(&i) {
                    7
                } else {
                    (i * 37 % 251) as u8
                }
            })
            .collect();
        row.extend([1, 1, 2, 3, 3, 3]);
        let mut enc = Vec::new();
        pack_bits(&row, &mut enc);
        assert_eq!(unpack(&enc, row.len()), row);
        assert!(
            enc.len() < row.len(),
            "runs must compress: {} >= {}",
            enc.len(),
            row.len()
        );
    }
}
