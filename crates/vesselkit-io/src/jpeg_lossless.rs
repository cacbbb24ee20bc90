//! JPEG lossless encoder (ITU T.81 process 14, selection value 1, point transform 0), the
//! DICOM default lossless JPEG (1.2.840.10008.1.2.4.70). dicom-rs 0.10 decodes it but cannot
//! encode it. One greyscale component; one optimal Huffman table per frame (Annex K.2/K.3).

const SYMBOLS: usize = 17; // difference categories 0..=16

/// Category (SSSS) and the wrapped difference for a prediction error.
#[inline]
fn category(diff: i32) -> (u32, i32) {
    // Differences are taken modulo 2^16 into -32767..=32768 (H.1.2.1).
    let mut d = diff.rem_euclid(65536);
    if d > 32768 {
        d -= 65536;
    }
    let ssss = if d == 0 {
        0
    } else {
        32 - d.unsigned_abs().leading_zeros()
    };
    (ssss, d)
}

/// Prediction errors of one frame in raster order (predictor 1, first column from above).
fn differences(px: &[u16], rows: usize, cols: usize, precision: u8) -> Vec<i32> {
    let mut out = Vec::with_capacity(px.len());
    for r in 0..rows {
        for c in 0..cols {
            let x = i32::from(px[r * cols + c]);
            let pred = match (r, c) {
                (0, 0) => 1i32 << (precision - 1),
                (_, 0) => i32::from(px[(r - 1) * cols]),
                _ => i32::from(px[r * cols + c - 1]),
            };
            out.push(x - pred);
        }
    }
    out
}

/// Optimal code lengths (at most 16 bits, no all-ones code): returns (BITS[1..=16], HUFFVAL).
fn huffman_table(freq_in: &[u64; SYMBOLS]) -> ([u8; 16], Vec<u8>) {
    // Annex K.2, with a reserved symbol (index SYMBOLS) of frequency 1.
    const N: usize = SYMBOLS + 1;
    let mut freq = [0u64; N];
    freq[..SYMBOLS].copy_from_slice(freq_in);
    freq[SYMBOLS] = 1;
    let mut codesize = [0usize; N];
    let mut others = [usize::MAX; N];
    loop {
        // v1: least non-zero frequency (largest index on ties); v2: the next least.
        let mut v1 = usize::MAX;
        for i in 0..N {
            if freq[i] > 0 && (v1 == usize::MAX || freq[i] <= freq[v1]) {
                v1 = i;
            }
        }
        let mut v2 = usize::MAX;
        for i in 0..N {
            if i != v1 && freq[i] > 0 && (v2 == usize::MAX || freq[i] <= freq[v2]) {
                v2 = i;
            }
        }
        if v2 == usize::MAX {
            break;
        }
        freq[v1] += freq[v2];
        freq[v2] = 0;
        let mut k = v1;
        codesize[k] += 1;
        while others[k] != usize::MAX {
            k = others[k];
            codesize[k] += 1;
        }
        others[k] = v2;
        let mut k = v2;
        codesize[k] += 1;
        while others[k] != usize::MAX {
            k = others[k];
            codesize[k] += 1;
        }
    }
    let mut bits = [0usize; 40];
    for &cs in &codesize {
        if cs > 0 {
            bits[cs] += 1;
        }
    }
    // K.3: limit code lengths to 16 bits.
    for i in (17..40).rev() {
        while bits[i] > 0 {
            let mut j = i - 2;
            while bits[j] == 0 {
                j -= 1;
            }
            bits[i] -= 2;
            bits[i - 1] += 1;
            bits[j + 1] += 2;
            bits[j] -= 1;
        }
    }
    // Remove the reserved code (the longest).
    let mut i = 16;
    while bits[i] == 0 {
        i -= 1;
    }
    bits[i] -= 1;
    let mut huffval = Vec::new();
    for len in 1..40 {
        for (sym, &cs) in codesize.iter().enumerate().take(SYMBOLS) {
            if cs == len {
                huffval.push(sym as u8);
            }
        }
    }
    let mut out = [0u8; 16];
    for (l, o) in out.iter_mut().enumerate() {
        *o = bits[l + 1] as u8;
    }
    (out, huffval)
}

/// Canonical codes (Annex C) for each symbol: (code, length).
fn codes(bits: &[u8; 16], huffval: &[u8]) -> [(u32, u32); SYMBOLS] {
    let mut table = [(0u32, 0u32); SYMBOLS];
    let mut code = 0u32;
    let mut k = 0;
    for (l, &n) in bits.iter().enumerate() {
        for _ in 0..n {
            if let Some(&sym) = huffval.get(k) {
                table[usize::from(sym)] = (code, l as u32 + 1);
            }
            code += 1;
            k += 1;
        }
        code <<= 1;
    }
    table
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    #[inline]
    fn put(&mut self, value: u32, len: u32) {
        if len == 0 {
            return;
        }
        // len <= 16: the accumulator never holds more than 23 pending bits.
        self.acc = (self.acc << len) | (u64::from(value) & ((1u64 << len) - 1));
        self.n += len;
        while self.n >= 8 {
            self.n -= 8;
            let byte = (self.acc >> self.n) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0x00);
            }
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1u32 << pad) - 1, pad);
        }
        self.out
    }
}

/// Encode one greyscale frame (`rows x cols`, row-major, every sample < 2^precision) as a
/// JPEG lossless SV1 bit stream (SOI..EOI).
pub(crate) fn encode_frame(px: &[u16], rows: usize, cols: usize, precision: u8) -> Vec<u8> {
    debug_assert!((2..=16).contains(&precision));
    let diffs = differences(px, rows, cols, precision);
    let mut freq = [0u64; SYMBOLS];
    for &d in &diffs {
        freq[category(d).0 as usize] += 1;
    }
    let (bits, huffval) = huffman_table(&freq);
    let table = codes(&bits, &huffval);

    let mut out = Vec::with_capacity(px.len() + 64);
    out.extend_from_slice(&[0xFF, 0xD8]); // SOI
    // SOF3: lossless, Huffman.
    out.extend_from_slice(&[0xFF, 0xC3, 0, 11, precision]);
    out.extend_from_slice(&(rows as u16).to_be_bytes());
    out.extend_from_slice(&(cols as u16).to_be_bytes());
    out.extend_from_slice(&[1, 1, 0x11, 0]);
    // DHT: one DC-class table, id 0.
    out.extend_from_slice(&[0xFF, 0xC4]);
    out.extend_from_slice(&((2 + 1 + 16 + huffval.len()) as u16).to_be_bytes());
    out.push(0x00);
    out.extend_from_slice(&bits);
    out.extend_from_slice(&huffval);
    // SOS: one component, table 0, predictor 1, point transform 0.
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 0, 0]);
    let mut w = BitWriter { out, acc: 0, n: 0 };
    for &d in &diffs {
        let (ssss, d) = category(d);
        let (code, len) = table[ssss as usize];
        w.put(code, len);
        if ssss > 0 && ssss < 16 {
            let extra = if d > 0 { d } else { d - 1 };
            w.put(extra as u32 & ((1u32 << ssss) - 1), ssss);
        }
    }
    let mut out = w.finish();
    out.extend_from_slice(&[0xFF, 0xD9]); // EOI
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(stream: &[u8]) -> (Vec<u16>, jpeg_decoder::ImageInfo) {
        let mut d = jpeg_decoder::Decoder::new(stream);
        let data = d.decode().expect("decode");
        let info = d.info().expect("info");
        let px = if info.pixel_format == jpeg_decoder::PixelFormat::L16 {
            data.chunks_exact(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect()
        } else {
            data.iter().map(|&b| u16::from(b)).collect()
        };
        (px, info)
    }

    #[test]
    fn categories_follow_t81() {
        assert_eq!(category(0), (0, 0));
        assert_eq!(category(1), (1, 1));
        assert_eq!(category(-1), (1, -1));
        assert_eq!(category(255), (8, 255));
        assert_eq!(category(-256), (9, -256));
        assert_eq!(category(32768), (16, 32768));
        assert_eq!(category(-32768), (16, 32768));
        assert_eq!(category(40000), (15, 40000 - 65536));
    }

    #[test]
    fn huffman_lengths_are_prefix_free_and_limited() {
        let mut freq = [0u64; SYMBOLS];
        for (i, f) in freq.iter_mut().enumerate() {
            *f = 1u64 << (2 * i).min(40); // very skewed: forces the 16-bit limit
        }
        let (bits, vals) = huffman_table(&freq);
        assert_eq!(vals.len(), SYMBOLS);
        assert_eq!(bits.iter().map(|&b| b as usize).sum::<usize>(), SYMBOLS);
        // Kraft sum strictly below 1 (the all-ones code is reserved).
        let kraft: f64 = bits
            .iter()
            .enumerate()
            .map(|(l, &n)| f64::from(n) / 2f64.powi(l as i32 + 1))
            .sum();
        assert!(kraft < 1.0, "{kraft}");
    }

    #[test]
    fn round_trips_through_jpeg_decoder_16_and_8_bit() {
        let (rows, cols) = (37, 53);
        for precision in [16u8, 12, 8] {
            let max = (1u32 << precision) - 1;
            let px: Vec<u16> = (0..rows * cols)
                .map(|i| {
                    let (r, c) = (i / cols, i % cols);
                    let v = (r * 997 + c * c * 31 + (i * 7919) % 113) as u32;
                    if i % 17 == 0 {
                        max as u16
                    } else if i % 19 == 0 {
                        0
                    } else {
                        (v % (max + 1)) as u16
                    }
                })
                .collect();
            let stream = encode_frame(&px, rows, cols, precision);
            let (back, info) = decode(&stream);
            assert_eq!((info.width as usize, info.height as usize), (cols, rows));
            assert_eq!(back, px, "precision {precision}");
        }
    }

    #[test]
    fn constant_image_round_trips() {
        let px = vec![1234u16; 16 * 16];
        let (back, _) = decode(&encode_frame(&px, 16, 16, 12));
        assert_eq!(back, px);
    }
}
