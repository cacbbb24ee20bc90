//! The lesion vocabulary shared by phantoms, classification and evaluation.

use serde::{Deserialize, Serialize};

/// Angiographic lesion type of CTEPH (Kawakami 2016, types A to E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionType {
    /// A: short concentric band-like narrowing, normal lumen on both sides.
    Ring,
    /// B: thin lucent bands crossing the lumen, slit-like lumen or several channels.
    Web,
    /// C: near-occlusion with some contrast passing and delayed, poor distal filling.
    Subtotal,
    /// D: no antegrade contrast beyond the lesion.
    Occlusion,
    /// E: lesion in or continuing into a winding small distal branch.
    Tortuous,
}

impl LesionType {
    pub const ALL: [LesionType; 5] = [Self::Ring, Self::Web, Self::Subtotal, Self::Occlusion, Self::Tortuous];

    /// Report name: `ring`, `web`, `subtotal`, `occlusion`, `tortuous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::Web => "web",
            Self::Subtotal => "subtotal",
            Self::Occlusion => "occlusion",
            Self::Tortuous => "tortuous",
        }
    }

    /// Kawakami letter A to E.
    pub fn kawakami(self) -> char {
        match self {
            Self::Ring => 'A',
            Self::Web => 'B',
            Self::Subtotal => 'C',
            Self::Occlusion => 'D',
            Self::Tortuous => 'E',
        }
    }

    /// Parse a report name; the error lists the allowed values.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| {
                t.as_str().eq_ignore_ascii_case(s)
                    || s.len() == 1 && t.kawakami().eq_ignore_ascii_case(&s.chars().next().unwrap_or(' '))
            })
            .ok_or_else(|| {
                format!("unknown lesion type {s:?}; expected one of ring, web, subtotal, occlusion, tortuous (or A-E)")
            })
    }
}

impl std::fmt::Display for LesionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_round_trip() {
        for t in LesionType::ALL {
            assert_eq!(LesionType::parse(t.as_str()).unwrap(), t);
            assert_eq!(LesionType::parse(&t.kawakami().to_string()).unwrap(), t);
        }
        assert!(LesionType::parse("stent").unwrap_err().contains("ring, web"));
        assert_eq!(LesionType::Web.kawakami(), 'B');
    }
}
