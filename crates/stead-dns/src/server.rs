//! The hickory-server request handler: decode, [`answer`], encode; forward what is not ours.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::answer::{Answer, Response, answer};
use crate::cache::SharedSnapshot;
use crate::forward::forward;
use crate::probe::encode_query;

/// Answers from the shared snapshot; relays other names to `upstream`.
pub(crate) struct Handler {
    pub snapshot: SharedSnapshot,
    pub upstream: Option<SocketAddr>,
    pub upstream_timeout: Duration,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let edns = response_edns(request);
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let metadata = &request.metadata;
        let refusal = match (metadata.message_type, metadata.op_code) {
            (MessageType::Query, OpCode::Query) => None,
            (MessageType::Query, _) => Some(ResponseCode::NotImp),
            (MessageType::Response, _) => Some(ResponseCode::FormErr),
        };
        let info = match (refusal, request.request_info()) {
            (None, Ok(info)) => info,
            (code, _) => {
                let code = code.unwrap_or(ResponseCode::FormErr);
                let response = builder.error_msg(metadata, code);
                return sent(response_handle.send_response(response).await, metadata);
            }
        };
        let query = info.query.original();
        let outcome = answer(&self.snapshot.load(), query);
        match outcome {
            Answer::Local(mut local) => {
                if let (Some(target), Some(upstream)) = (local.chase.take(), self.upstream) {
                    let tcp = request.protocol() == Protocol::Tcp;
                    let chased = encode_query(metadata.id, &target, query.query_type(), false);
                    match forward(upstream, &chased, tcp, self.upstream_timeout).await {
                        Ok(reply) if reply.metadata.response_code == ResponseCode::NoError => {
                            local.answers.extend(reply.answers);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "alias target lookup failed"),
                    }
                }
                let header = local_metadata(metadata, &local);
                let response = builder.build(
                    header,
                    local.answers.iter(),
                    local.authority.iter(),
                    std::iter::empty(),
                    local.additionals.iter(),
                );
                sent(response_handle.send_response(response).await, metadata)
            }
            Answer::Forward => {
                let relayed = match self.upstream {
                    Some(upstream) => {
                        let tcp = request.protocol() == Protocol::Tcp;
                        forward(upstream, request.as_slice(), tcp, self.upstream_timeout)
                            .await
                            .inspect_err(|e| tracing::debug!(error = %e, "forward failed"))
                            .ok()
                    }
                    None => None,
                };
                let Some(reply) = relayed else {
                    let mut header = Metadata::response_from_request(metadata);
                    header.response_code = ResponseCode::ServFail;
                    header.recursion_available = true;
                    let response = builder.build_no_records(header);
                    return sent(response_handle.send_response(response).await, metadata);
                };
                relay(request, reply, edns.as_ref(), &mut response_handle).await
            }
        }
    }
}

/// Sends the upstream's `reply` to the client under the request's id.
async fn relay<R: ResponseHandler>(
    request: &Request,
    reply: Message,
    edns: Option<&Edns>,
    response_handle: &mut R,
) -> ResponseInfo {
    let mut header = reply.metadata;
    header.id = request.metadata.id;
    header.message_type = MessageType::Response;
    let builder = MessageResponseBuilder::new(&request.queries, edns);
    let response = builder.build(
        header,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
    );
    sent(
        response_handle.send_response(response).await,
        &request.metadata,
    )
}

fn local_metadata(request: &Metadata, local: &Response) -> Metadata {
    let mut header = Metadata::response_from_request(request);
    header.response_code = local.code;
    header.authoritative = local.code != ResponseCode::ServFail;
    header.recursion_available = true;
    header
}

/// EDNS in the response when the request had it: the same payload size (at least 512).
fn response_edns(request: &Request) -> Option<Edns> {
    let req = request.edns.as_ref()?;
    let mut edns = Edns::new();
    edns.set_max_payload(req.max_payload().max(512));
    edns.set_version(0);
    Some(edns)
}

fn sent(
    result: Result<ResponseInfo, hickory_server::net::NetError>,
    request: &Metadata,
) -> ResponseInfo {
    result.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "cluster dns could not send a response");
        let mut header = Metadata::response_from_request(request);
        header.response_code = ResponseCode::ServFail;
        ResponseInfo::from(hickory_proto::op::Header {
            metadata: header,
            counts: Default::default(),
        })
    })
}
