//! Angiography: vessel segmentation, centerline tree, diameter profiles, QCA, tortuosity, cine flow
