//! vesselkit: vessel analysis for X-ray angiography and intravascular OCT (research use only)
