"""Neural-network building blocks: Module, Parameter, layers, init, losses."""
