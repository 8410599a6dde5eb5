//! Routing by method, like poem's `get(…).post(…)`, but a wrong method gets a `405` that
//! says which methods the address does take (`Allow`), and `OPTIONS` is answered with
//! them. `HEAD` runs the `GET` handler and sends no body.

use poem::{
    endpoint::BoxEndpoint,
    http::{header, Method, StatusCode},
    Endpoint, EndpointExt, IntoEndpoint, Request, Response, Result,
};

type Handler = BoxEndpoint<'static, Response>;

/// The handlers of one address, by method.
pub struct Methods {
    handlers: Vec<(Method, Handler)>,
}

/// An address answered by `ep` on `GET` (and `HEAD`).
pub fn get<E: IntoEndpoint>(ep: E) -> Methods
where
    E::Endpoint: 'static,
{
    Methods { handlers: Vec::new() }.get(ep)
}

/// An address answered by `ep` on `POST`.
pub fn post<E: IntoEndpoint>(ep: E) -> Methods
where
    E::Endpoint: 'static,
{
    Methods { handlers: Vec::new() }.post(ep)
}

impl Methods {
    #[must_use]
    pub fn get<E: IntoEndpoint>(self, ep: E) -> Self
    where
        E::Endpoint: 'static,
    {
        self.method(Method::GET, ep)
    }

    #[must_use]
    pub fn post<E: IntoEndpoint>(self, ep: E) -> Self
    where
        E::Endpoint: 'static,
    {
        self.method(Method::POST, ep)
    }

    fn method<E: IntoEndpoint>(mut self, method: Method, ep: E) -> Self
    where
        E::Endpoint: 'static,
    {
        self.handlers.push((method, ep.into_endpoint().map_to_response().boxed()));
        self
    }

    fn handler(&self, method: &Method) -> Option<&Handler> {
        self.handlers.iter().find(|(m, _)| m == method).map(|(_, ep)| ep)
    }

    /// The `Allow` header's value: `GET, HEAD, POST`, say.
    fn allow(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (method, _) in &self.handlers {
            names.push(method.as_str());
            if method == Method::GET {
                names.push("HEAD");
            }
        }
        names.push("OPTIONS");
        names.join(", ")
    }
}

impl Endpoint for Methods {
    type Output = Response;

    async fn call(&self, mut request: Request) -> Result<Response> {
        if let Some(ep) = self.handler(request.method()) {
            return ep.call(request).await;
        }
        if request.method() == Method::HEAD {
            if let Some(ep) = self.handler(&Method::GET) {
                request.set_method(Method::GET);
                let mut response = ep.call(request).await?;
                response.set_body(());
                return Ok(response);
            }
        }
        let status =
            if request.method() == Method::OPTIONS { StatusCode::NO_CONTENT } else { StatusCode::METHOD_NOT_ALLOWED };
        let builder = Response::builder().status(status).header(header::ALLOW, self.allow());
        Ok(if status == StatusCode::NO_CONTENT {
            builder.finish()
        } else {
            builder.content_type("text/plain; charset=utf-8").body("This address does not take that method.\n")
        })
    }
}
