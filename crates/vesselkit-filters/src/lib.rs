//! Gaussian derivatives, Hessian and vesselness filters in f32
