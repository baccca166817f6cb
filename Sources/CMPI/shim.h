// The few MPI calls mdflow makes, as functions Swift can import: Open MPI's handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE) are macros over addresses of globals.
#include <mpi.h>

static inline int mdflow_mpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
static inline int mdflow_mpi_init(void) { return MPI_Init(NULL, NULL); }
static inline int mdflow_mpi_finalize(void) { return MPI_Finalize(); }
static inline int mdflow_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int mdflow_mpi_size(void) { int n = 1; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

/// Ranks on this node (those that share its memory).
static inline int mdflow_mpi_local_size(void) {
    MPI_Comm local;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) != MPI_SUCCESS) return 1;
    MPI_Comm_size(local, &n);
    MPI_Comm_free(&local);
    return n;
}

static inline int mdflow_mpi_sum_floats(float *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int mdflow_mpi_sum_doubles(double *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline void mdflow_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
