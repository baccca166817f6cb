// FlowNets: FastFlowNet (teacher) and RAFT / RAFT-small (students).
